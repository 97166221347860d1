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
        BenchCommand::Decode { file } => {
            let stats = ttlc_ingest::bench_decode(&file)?;
            println!(
                "decoded {} frames ({} bad) into {} messages, {} bytes of envelope JSON, in {:.3} s: {:.0} messages/s",
                stats.frames,
                stats.bad_frames,
                stats.messages,
                stats.json_bytes,
                stats.elapsed.as_secs_f64(),
                stats.messages_per_sec
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
