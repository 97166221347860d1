//! `ttlc`: one binary, a subcommand per stage. Subcommands parse arguments and call into the
//! libraries; there is no pipeline logic here.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ttlc — TikTok LIVE event platform.
///
/// Ingests TikTok LIVE events from many channels, normalizes them into UnifiedEvent v1, archives
/// them to PostgreSQL and ClickHouse, runs rules that trigger actions, and serves history,
/// analytics and live feeds over HTTP. Every stage is a subcommand; `all` runs them together.
#[derive(Debug, Parser)]
#[command(name = "ttlc", version, propagate_version = true)]
struct Cli {
    /// TOML config file; environment variables override it (see README, "Configuration").
    #[arg(long, global = true, env = "TTLC_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Declare the pipeline topics on the broker (apply) or show them (list).
    #[command(subcommand)]
    Topics(commands::topics::TopicsCommand),
    /// Apply PostgreSQL and ClickHouse migrations.
    Migrate,
    /// Ingest TikTok LIVE events into the raw topic (direct, euler or mock provider).
    Ingest(ttlc_ingest::IngestArgs),
    /// Normalize raw.v1 into UnifiedEvent v1 (the stage), or offline with --file.
    Normalize(commands::normalize::NormalizeArgs),
    /// Archive unified events to PostgreSQL (consumer group archive-pg).
    ArchivePg,
    /// Archive unified events to ClickHouse (consumer group archive-ch).
    ArchiveCh,
    /// Evaluate rules on unified events and emit action requests.
    Rules,
    /// Execute action requests (webhook, announce, moderate, overlay, log).
    Execute,
    /// Serve the HTTP API.
    Api,
    /// Run every stage in one process (small installs).
    All,
    /// Replay a stored session into the raw topic with a new session id.
    Replay(commands::replay::ReplayArgs),
    /// Mint a development JWT (HS256 with TTLC_JWT_SECRET).
    Token(commands::token::TokenArgs),
    /// Inspect or re-drive the dead-letter queue.
    #[command(subcommand)]
    Dlq(commands::dlq::DlqCommand),
    /// Apply retention once: archive and delete old events, delete old actions_log, sessions and
    /// streams, pseudonymize inactive users (periods in [retention]; needs TTLC_PSEUDONYM_SECRET).
    /// Exit 75: a ClickHouse delete was still running at the end (re-run to confirm).
    Prune(commands::maintenance::PruneArgs),
    /// Erase a user's data (GDPR) in PostgreSQL and ClickHouse, audited in gdpr_erasures.
    /// Exit 5: no data and no earlier erasure for that user; 75: a ClickHouse delete was still
    /// running at the end (re-run to confirm; re-running is always safe).
    GdprErase(commands::maintenance::GdprArgs),
    /// Benchmarks and load generators against the local stack.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Development tools.
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// A local stand-in for TikTok's sign server and push WebSocket (speaks the real protocol).
    MockTiktok(ttlc_ingest::MockTiktokArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("ttlc: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli.config.as_deref(), cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ttlc: {error:#}");
            ExitCode::FAILURE
        }
    }
}
