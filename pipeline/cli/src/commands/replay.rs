//! `ttlc replay SESSION_ID`: re-publishes a stored session to `raw` as a new session.
//!
//! The new sessionId goes to stdout (alone, so scripts can capture it) as soon as the session is
//! found; progress goes to stderr. Ctrl-C stops publishing, flushes what is queued and exits 130,
//! so a script can tell an interrupted replay from a complete one.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ttlc_core::config::Config;
use ttlc_ingest::replay::{DEFAULT_RATE_CAP, PreparedReplay, ReplayOptions};
use ttlc_ingest::service::Publishing;

/// Exit code of a replay stopped by SIGINT/SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The stored session to replay.
    pub(crate) session_id: String,
    /// Speed factor: 1.0 = original timing, 0 = as fast as possible.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) speed: f64,
    /// Never publish more than this many events per second.
    #[arg(long, default_value_t = DEFAULT_RATE_CAP, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rate_cap: u32,
}

pub(crate) async fn run(config: Config, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let shutdown = ttlc_core::shutdown::install();
    let options = ReplayOptions { rate_cap: args.rate_cap, ..ReplayOptions::new(args.speed) };
    let prepared = PreparedReplay::prepare(&config, &args.session_id, options)
        .await
        .with_context(|| format!("preparing the replay of {}", args.session_id))?;
    println!("{}", prepared.new_session_id());

    let bar = ProgressBar::with_draw_target(Some(prepared.total()), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));

    let publishing = Publishing::start(&config).context("starting the publisher")?;
    let replay = prepared
        .run(&publishing.sink, &shutdown, |p| {
            bar.set_length(p.total);
            bar.set_position(p.sent);
        })
        .await;
    // Flush before reporting: "done" means the broker has every envelope.
    let published = publishing.finish().await.context("flushing the publisher")?;
    let stats = replay.context("replaying the session")?;
    bar.finish_and_clear();
    eprintln!(
        "replay of {} as {}: sent {} of {} events in {:.2} s; delivered {}, failed {}{}",
        stats.original_session_id,
        stats.new_session_id,
        stats.sent,
        stats.total,
        stats.elapsed.as_secs_f64(),
        published.delivered,
        published.failed,
        if stats.interrupted { " (interrupted)" } else { "" },
    );
    if published.failed > 0 {
        anyhow::bail!("{} envelopes were not delivered", published.failed);
    }
    Ok(if stats.interrupted { ExitCode::from(INTERRUPTED) } else { ExitCode::SUCCESS })
}
