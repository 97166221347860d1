//! `ttlc bench …`: load commands against the real local stack (see benches/README.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// A stage's throughput through the broker vs. a pass-through stage, in the same run.
    Stage(ttlc_benches::stage::StageBenchArgs),
    /// Decode a recorded TikTok WebSocket capture through the real ingest path.
    Decode {
        /// Capture file: each message is a big-endian u32 length, then its bytes.
        file: PathBuf,
    },
}

pub(crate) async fn run(config: Option<&Path>, command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Stage(args) => {
            ttlc_benches::stage::run(super::load_config(config)?, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Decode { .. } => super::pending::not_yet("bench decode", 5),
    }
}
