//! Errors of the archive library (migrations, connecting). Batch failures inside a stage are
//! [`ttlc_core::StageError`]s, classified where the database error is seen.

/// A failure to prepare a store: connect, parse its URL or apply migrations.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("ClickHouse: {0}")]
    Clickhouse(#[from] ::clickhouse::error::Error),
    #[error("invalid {what} URL: {reason}")]
    InvalidUrl { what: &'static str, reason: String },
    #[error(
        "migration {version} ({name}) was changed after it was applied (checksum {applied} in the \
         database, {embedded} in this build); write a new migration instead of editing an old one"
    )]
    MigrationChanged { version: i32, name: &'static str, applied: String, embedded: String },
    #[error("connecting to {what} timed out")]
    ConnectTimeout { what: &'static str },
}
