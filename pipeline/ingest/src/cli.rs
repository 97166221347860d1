//! Entry points the `ttlc` binary calls: `ttlc ingest`, `ttlc dev mock-tiktok` and
//! `ttlc bench decode`. Arguments are parsed here so the CLI crate stays free of logic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_schemas::Provider;

use crate::bench::DecodeStats;
use crate::mock_provider::{self, MockReplay};
use crate::mock_server::{MockConfig, MockServer, Scenario};
use crate::service::{IngestService, Publishing};

/// Which provider `ttlc ingest` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    /// TikTok's webcast WebSocket through a sign server.
    Direct,
    /// The Euler WebSocket relay.
    Euler,
    /// Replay an NDJSON file of raw.v1 envelopes.
    Mock,
}

/// `ttlc ingest` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct IngestArgs {
    /// Provider to ingest from.
    #[arg(long, value_enum, default_value = "direct")]
    pub provider: ProviderArg,
    /// Channel to ingest (`@uniqueId` or a room id); repeat for more. Added to `ingest.channels`.
    #[arg(long = "channel")]
    pub channels: Vec<String>,
    /// NDJSON file of raw.v1 envelopes (mock provider).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Envelopes per second for the mock provider; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Replay the file again and again, with a fresh sessionId per pass (mock provider).
    #[arg(long = "loop")]
    pub looping: bool,
    /// Stop after this many seconds (mock provider load runs).
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Record every binary WebSocket message received to this file (direct provider).
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// Runs ingest until `shutdown` (or, for the mock provider, the end of the file).
pub async fn run_ingest(
    config: Config,
    args: IngestArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match args.provider {
        ProviderArg::Direct => run_live(&config, &args, Provider::Direct, shutdown).await,
        ProviderArg::Euler => run_live(&config, &args, Provider::Euler, shutdown).await,
        ProviderArg::Mock => run_mock(&config, &args, shutdown).await,
    }
}

async fn run_live(
    config: &Config,
    args: &IngestArgs,
    provider: Provider,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut channels: Vec<String> = config.ingest.channels.clone();
    channels.extend(args.channels.iter().cloned());
    if channels.is_empty() && config.ingest.control_poll_ms == 0 {
        bail!(
            "no channels: pass --channel @user (repeatable), set ingest.channels, or turn the \
             control table on (ingest.control_poll_ms > 0) to take channels from /channels"
        );
    }
    let service =
        IngestService::start_provider(config, provider, args.record.as_deref(), shutdown.clone())
            .await
            .context("starting ingest")?;
    // Runs until shutdown (or, without the control table, until every channel ended).
    let stats = service.run(config, &channels, &shutdown).await.context("running ingest")?;
    tracing::info!(delivered = stats.delivered, failed = stats.failed, "Ingest stopped.");
    Ok(())
}

async fn run_mock(
    config: &Config,
    args: &IngestArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(file) = args.file.clone() else { bail!("--provider mock needs --file F.ndjson") };
    let spec = MockReplay {
        file,
        rate: args.rate,
        looping: args.looping,
        duration: args.duration_secs.map(Duration::from_secs),
    };
    let publishing = Publishing::start(config).context("starting the publisher")?;
    let replay = mock_provider::run(&spec, &publishing.sink, &shutdown).await;
    let published = publishing.finish().await.context("flushing the publisher")?;
    let stats = replay.context("replaying the file")?;
    let target = if spec.rate == 0 { "unpaced".to_owned() } else { format!("{}/s", spec.rate) };
    println!(
        "mock ingest: sent {} envelopes in {:.2} s = {:.0} events/s (target {target}); \
         delivered {}, failed {}, skipped lines {}, passes {}",
        stats.sent,
        stats.elapsed.as_secs_f64(),
        stats.achieved_rate,
        published.delivered,
        published.failed,
        stats.skipped_lines,
        stats.passes,
    );
    Ok(())
}

/// `ttlc dev mock-tiktok` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct MockTiktokArgs {
    /// Address to listen on (127.0.0.1 only; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// Rooms to create at start (`@mock-0` …); any other room or @uniqueId also works.
    #[arg(long, default_value_t = 0)]
    pub rooms: usize,
    /// Messages per second per connected room once its script is done.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Scenario of new rooms: chat, gifts, likes, joins, social, battle, stream-end,
    /// undecodable, heartbeat-timeout, refused-handshake, sign-429, all, load. A room whose
    /// unique id starts with `NAME--` gets that scenario instead.
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// Record every binary WebSocket message sent to this file (u32 big-endian length + bytes).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Require this `x-api-key` on sign requests.
    #[arg(long, env = "TTLC_MOCK_API_KEY")]
    pub api_key: Option<String>,
    /// Heartbeat interval told to clients, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// Close connections without a heartbeat for this long, in milliseconds.
    #[arg(long, default_value_t = 25_000)]
    pub heartbeat_timeout_ms: u64,
}

/// Runs the mock TikTok server until `shutdown`.
pub async fn run_mock_tiktok(
    args: MockTiktokArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!("the mock TikTok server only listens on loopback addresses, not {}", args.listen);
    }
    let Some(scenario) = Scenario::parse(&args.scenario) else {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        bail!("unknown scenario `{}`; one of: {}", args.scenario, names.join(", "));
    };
    let config = MockConfig {
        listen: args.listen,
        scenario,
        rooms: args.rooms,
        rate: args.rate,
        api_key: args.api_key,
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        heartbeat_timeout: Duration::from_millis(args.heartbeat_timeout_ms),
        record: args.record,
        ..MockConfig::default()
    };
    let server = MockServer::start(config, shutdown.clone()).await.context("starting the mock")?;
    let base = server.base_url();
    println!("mock TikTok listening on {base} (scenario {scenario})");
    println!("  point ingest at it: TTLC_SIGN_API_URL={base} TTLC__INGEST__TIKTOK_WEB_URL={base}");
    println!("  counters: {base}/mock/stats");
    for room in server.rooms() {
        println!("  room @{} = {}", room.unique_id, room.room_id);
    }
    shutdown.cancelled().await;
    server.stop().await;
    Ok(())
}

/// `ttlc bench decode FILE`: decodes a capture through the ingest path.
pub fn bench_decode(path: &Path) -> anyhow::Result<DecodeStats> {
    crate::bench::bench_decode(path).with_context(|| format!("decoding {}", path.display()))
}
