//! Retention, pseudonymization and GDPR erasure (SPEC §8): the only code that changes or removes
//! stored events. It runs as the maintenance role (`SET ROLE ttlc_maint`, `retention.maint_role`)
//! because the application role cannot UPDATE or DELETE `events` (migration 0002).
//!
//! - [`prune`]: events older than `retention.events_archive_days` move from `events` to
//!   `events_archive` (out of the API's reach, still in the system of record); archived events
//!   older than `retention.events_delete_days` are hard-deleted, in PostgreSQL and ClickHouse;
//!   old `actions_log`, `sessions` and `streams` rows are deleted; inactive users are
//!   pseudonymized with HMAC-SHA256. Every statement touches at most `retention.batch_size` rows
//!   in its own transaction.
//! - [`erase`]: one PostgreSQL transaction removes a user's events (live and archived), notes and
//!   user row, redacts the actions rendered from their events and writes the `gdpr_erasures`
//!   audit row; then a ClickHouse mutation deletes their analytics rows.
//!
//! ClickHouse has no transactions: its deletes run after PostgreSQL committed, are idempotent
//! (`ALTER TABLE … DELETE WHERE`), and both commands are safe to run again after a failure.

mod clickhouse_ops;
mod gdpr;
mod prune;
mod pseudonym;

use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use tracing::warn;
use ttlc_core::config::Config;

pub use clickhouse_ops::ChDelete;
pub use gdpr::{ErasureReport, Subject, erase};
pub use prune::{PruneReport, Pruned, prune};
pub use pseudonym::{MIN_KEY_BYTES, Pseudonymizer};

use crate::ArchiveError;

/// Why a maintenance command failed, and whether running it again may help
/// ([`RetentionError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("ClickHouse: {0}")]
    Clickhouse(#[from] ::clickhouse::error::Error),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(
        "pseudonymizing inactive users needs TTLC_PSEUDONYM_SECRET (at least {MIN_KEY_BYTES} \
         bytes, e.g. `openssl rand -hex 32`) in the environment; set it, or set \
         retention.users_inactive_days = 0 to keep users as they are"
    )]
    MissingKey,
    #[error(
        "TTLC_PSEUDONYM_SECRET has {0} bytes; HMAC-SHA256 pseudonyms need at least {MIN_KEY_BYTES}"
    )]
    WeakKey(usize),
    #[error("another `ttlc prune` is running on this database; wait for it to finish")]
    AlreadyRunning,
    #[error("{0} is the lifecycle pseudo-user (CONNECTED/DISCONNECTED events), not a person")]
    SystemUser(String),
    #[error(
        "no stored data and no earlier erasure for {0}: nothing erased, no audit row written \
         (check the id; --unique-id takes the @handle without '@')"
    )]
    UnknownSubject(String),
    #[error(
        "unique id {unique_id:?} belongs to {} user ids ({}): TikTok handles can change hands, so \
         erase each with --user-id, or pass --all-matches to erase them all",
        user_ids.len(),
        user_ids.join(", ")
    )]
    Ambiguous { unique_id: String, user_ids: Vec<String> },
}

impl RetentionError {
    /// True when the same command may succeed later without any change (a store was down or
    /// overloaded, a concurrent prune finished). Everything done before the failure is kept and
    /// a re-run continues from there.
    pub fn is_retryable(&self) -> bool {
        match self {
            RetentionError::Postgres(error) => pg_retryable(error),
            RetentionError::Clickhouse(error) => ch_retryable(error),
            RetentionError::Archive(ArchiveError::Postgres(error)) => pg_retryable(error),
            RetentionError::Archive(ArchiveError::Clickhouse(error)) => ch_retryable(error),
            RetentionError::Archive(ArchiveError::ConnectTimeout { .. }) => true,
            RetentionError::AlreadyRunning => true,
            _ => false,
        }
    }
}

/// Connection loss, I/O, serialization failures, lock or resource trouble, shutdown: transient.
/// Privileges (42501), missing tables and data errors are not.
fn pg_retryable(error: &tokio_postgres::Error) -> bool {
    match error.code().map(|c| &c.code()[..2]) {
        Some(class) => matches!(class, "08" | "40" | "53" | "55" | "57" | "58"),
        None => true,
    }
}

/// Transport failures, timeouts and overload; the same split as the archive-ch stage.
fn ch_retryable(error: &::clickhouse::error::Error) -> bool {
    use ::clickhouse::error::Error as ChError;
    match error {
        ChError::Network(_) | ChError::TimedOut => true,
        // Timeouts, too many queries, memory limit, too many parts, shutting down.
        ChError::BadResponse(body) => match body.split("Code: ").nth(1) {
            Some(rest) => {
                let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
                matches!(code.as_str(), "159" | "202" | "209" | "210" | "241" | "252" | "394")
            }
            None => true,
        },
        _ => false,
    }
}

/// Applies pending migrations first when the config says stages do (`migrate_on_start`), so
/// maintenance on a database an older build created finds `events_archive` and the indexes it
/// relies on, and a ClickHouse that archive-ch never wrote to has an (empty) `events` table.
async fn migrate_if_configured(config: &Config) -> Result<(), RetentionError> {
    if config.postgres.migrate_on_start {
        crate::migrate_postgres(&config.postgres.url).await?;
    }
    if config.clickhouse.migrate_on_start {
        crate::migrate_clickhouse(&config.clickhouse.url).await?;
    }
    Ok(())
}

/// A PostgreSQL session running as the maintenance role, once both stores are migrated
/// ([`migrate_if_configured`]; schema only, so a dry run does it too).
async fn connect_maint(config: &Config) -> Result<Client, RetentionError> {
    migrate_if_configured(config).await?;
    let mut pg: tokio_postgres::Config = config.postgres.url.parse()?;
    pg.connect_timeout(Duration::from_millis(config.postgres.connect_timeout_ms));
    pg.application_name("ttlc-maintenance");
    let (client, connection) = pg.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            warn!(error = %error, "The PostgreSQL maintenance connection ended with an error.");
        }
    });
    let role = &config.retention.maint_role;
    if !role.is_empty() {
        client.batch_execute(&format!("SET ROLE \"{}\"", role.replace('"', "\"\""))).await?;
    }
    Ok(client)
}

/// The pseudonymizer from `TTLC_PSEUDONYM_SECRET`, if the secret is set (and long enough).
fn pseudonymizer(config: &Config) -> Result<Option<Pseudonymizer>, RetentionError> {
    match &config.secrets.pseudonym_secret {
        Some(secret) => Pseudonymizer::new(secret.expose().as_bytes()).map(Some),
        None => Ok(None),
    }
}
