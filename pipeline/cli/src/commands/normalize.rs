//! `ttlc normalize`: the stage, or offline over a file / stdin with `--file`.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct NormalizeArgs {
    /// Normalize this NDJSON file of raw.v1 envelopes offline ("-" for stdin): UnifiedEvent JSON
    /// lines go to stdout, DLQ records to stderr. Without it, run the stage.
    #[arg(long)]
    file: Option<PathBuf>,
}

pub(crate) async fn run(config: Option<&Path>, args: NormalizeArgs) -> anyhow::Result<ExitCode> {
    match args.file {
        // Offline mode touches no broker and needs no config: it is the library over a file.
        Some(path) => offline(&path),
        None => super::stage(config, super::stages::normalize).await,
    }
}

fn offline(path: &Path) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout().lock();
    let stderr = std::io::stderr().lock();
    let stats = if path == Path::new("-") {
        ttlc_normalize::run_offline(std::io::stdin().lock(), stdout, stderr)
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        ttlc_normalize::run_offline(BufReader::new(file), stdout, stderr)
    }
    .context("normalizing")?;
    let mut err = std::io::stderr().lock();
    // The summary goes to stderr with the DLQ records, keeping stdout pure NDJSON.
    let _ = writeln!(
        err,
        "normalize: {} lines, {} events, {} rejected",
        stats.lines, stats.events, stats.rejected
    );
    Ok(ExitCode::SUCCESS)
}
