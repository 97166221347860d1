//! Subcommands whose implementation has not landed yet. They parse their documented arguments
//! (so scripts can be written against the final surface) and then say plainly that they do not
//! work yet, exiting non-zero — nothing pretends to work.

use std::process::ExitCode;

use clap::Args;

/// Exit code for "not implemented yet", distinct from runtime failures (1) and usage errors (2).
const NOT_YET: u8 = 3;

pub(crate) fn not_yet(command: &str, issue: u32) -> anyhow::Result<ExitCode> {
    eprintln!(
        "ttlc {command}: not implemented yet (tracked in issue #{issue}); see the README roadmap."
    );
    Ok(ExitCode::from(NOT_YET))
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// STREAMER, MODERATOR, VIEWER or OPERATOR.
    #[arg(long)]
    pub(crate) role: String,
    /// The stream (room id) the token is scoped to.
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub(crate) ttl: String,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct GdprArgs {
    /// TikTok numeric user id.
    #[arg(long)]
    pub(crate) user_id: Option<String>,
    /// TikTok @uniqueId.
    #[arg(long)]
    pub(crate) unique_id: Option<String>,
}
