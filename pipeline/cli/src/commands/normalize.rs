//! `ttlc normalize`: the stage, or offline over a file / stdin with `--file`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct NormalizeArgs {
    /// Normalize this NDJSON file of raw.v1 envelopes offline ("-" for stdin): UnifiedEvent JSON
    /// lines go to stdout, DLQ records to stderr. Without it, run the stage.
    #[arg(long)]
    file: Option<PathBuf>,
}

pub(crate) async fn run(config: Option<&Path>, args: NormalizeArgs) -> anyhow::Result<ExitCode> {
    let _ = (config, args);
    super::pending::not_yet("normalize", 3)
}
