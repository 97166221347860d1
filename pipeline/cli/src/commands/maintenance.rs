//! `ttlc prune` and `ttlc gdpr-erase`: argument parsing and exit codes around
//! [`ttlc_archive::retention`], where the logic lives. The summary goes to stdout, the structured
//! log line to stderr with the other logs.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use ttlc_archive::retention::{self, RetentionError, Subject};
use ttlc_core::config::Config;

/// Exit code when the subject of an erasure has no data and was never erased.
const NOT_FOUND: u8 = 5;
/// Exit code when everything is done except a ClickHouse delete that is still running
/// (EX_TEMPFAIL): run the same command again later to confirm.
const PENDING: u8 = 75;

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Count what would be archived, deleted and pseudonymized; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["user_id", "unique_id"])))]
pub(crate) struct GdprArgs {
    /// TikTok numeric user id.
    #[arg(long)]
    pub(crate) user_id: Option<String>,
    /// TikTok @uniqueId (with or without the '@'): the user id(s) seen with it are erased.
    #[arg(long)]
    pub(crate) unique_id: Option<String>,
    /// Who asked, for the audit row in gdpr_erasures.
    #[arg(long, env = "USER")]
    pub(crate) requested_by: Option<String>,
    /// Erase every user id a --unique-id resolves to, when it resolves to several.
    #[arg(long)]
    pub(crate) all_matches: bool,
    /// Show whom and how many rows the erasure would remove; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `ttlc prune`: 0 done, 75 a ClickHouse delete still running, 1 failed.
pub(crate) async fn prune(config: Config, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let report =
        retention::prune(&config, chrono::Utc::now(), args.dry_run).await.map_err(with_hint)?;
    print!("{report}");
    Ok(if report.steps.iter().any(|s| s.pending) {
        ExitCode::from(PENDING)
    } else {
        ExitCode::SUCCESS
    })
}

/// `ttlc gdpr-erase`: 0 erased (or erased before), 5 no such subject, 75 a ClickHouse delete
/// still running, 1 failed.
pub(crate) async fn gdpr_erase(config: Config, args: GdprArgs) -> anyhow::Result<ExitCode> {
    let subject = match (args.user_id, args.unique_id) {
        (Some(id), _) => Subject::UserId(id.trim().to_owned()),
        (None, Some(name)) => Subject::UniqueId(name.trim().trim_start_matches('@').to_owned()),
        (None, None) => anyhow::bail!("pass --user-id or --unique-id"),
    };
    let requested_by = args
        .requested_by
        .filter(|who| !who.trim().is_empty())
        .context("the audit needs to know who asked: pass --requested-by NAME")?;
    match retention::erase(&config, &subject, &requested_by, args.all_matches, args.dry_run).await {
        Ok(report) => {
            print!("{report}");
            Ok(if report.clickhouse.done { ExitCode::SUCCESS } else { ExitCode::from(PENDING) })
        }
        Err(error @ RetentionError::UnknownSubject(_)) => {
            eprintln!("ttlc gdpr-erase: {error}");
            Ok(ExitCode::from(NOT_FOUND))
        }
        Err(error) => Err(with_hint(error)),
    }
}

/// The error and whether running the command again can help.
fn with_hint(error: RetentionError) -> anyhow::Error {
    let hint = if error.is_retryable() {
        "retrying may help; what was done so far is kept and a re-run continues from there"
    } else {
        "retrying will not help until this is fixed"
    };
    anyhow::anyhow!("{error} ({hint})")
}
