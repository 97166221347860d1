//! Embedded schema migrations for PostgreSQL and ClickHouse.
//!
//! Files under `migrations/<store>/NNNN_name.sql` are compiled into the binary, applied in version
//! order and recorded in a `schema_migrations` table with a checksum, so `ttlc migrate` and every
//! stage start converge on the same schema and an edited, already-applied migration is refused
//! rather than silently skipped.
//!
//! PostgreSQL: one transaction per file under a session advisory lock, so concurrent starters (a
//! scaled-out stage, tests) apply each migration exactly once. ClickHouse has neither
//! transactions nor locks: its statements are written to be idempotent (`IF NOT EXISTS`) and are
//! simply applied again by a racing starter.

use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;
use tracing::info;

use crate::clickhouse::ClickhouseTarget;
use crate::error::ArchiveError;

/// One embedded migration file.
#[derive(Debug)]
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "core_tables",
        sql: include_str!("../migrations/postgres/0001_core_tables.sql"),
    },
    Migration {
        version: 2,
        name: "roles",
        sql: include_str!("../migrations/postgres/0002_roles.sql"),
    },
    Migration {
        version: 3,
        name: "ingest_channels",
        sql: include_str!("../migrations/postgres/0003_ingest_channels.sql"),
    },
    Migration {
        version: 4,
        name: "retention",
        sql: include_str!("../migrations/postgres/0004_retention.sql"),
    },
];

const CLICKHOUSE: &[Migration] = &[Migration {
    version: 1,
    name: "events",
    sql: include_str!("../migrations/clickhouse/0001_events.sql"),
}];

/// Key of the session advisory lock serializing PostgreSQL migrations (arbitrary, fixed: "ttlc").
const PG_MIGRATION_LOCK: i64 = 0x7474_6c63;

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<i32>,
    /// Versions that were already applied before this run.
    pub already_applied: Vec<i32>,
}

/// Applies pending PostgreSQL migrations on the database named in `url`.
///
/// The login role owns the schema: it needs CREATE on the database's `public` schema and, the
/// first time, CREATEROLE (migration 0002 creates the `ttlc_app`/`ttlc_maint` group roles and
/// makes the login role a member of both).
pub async fn migrate_postgres(url: &str) -> Result<MigrationReport, ArchiveError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let connection = tokio::spawn(connection);
    let result = apply_postgres(&client).await;
    drop(client);
    // The session ends with the client; ending it releases the advisory lock as well.
    let _ = connection.await;
    result
}

async fn apply_postgres(client: &tokio_postgres::Client) -> Result<MigrationReport, ArchiveError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&PG_MIGRATION_LOCK]).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 checksum   text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let applied: Vec<(i32, String)> = client
        .query("SELECT version, checksum FROM schema_migrations ORDER BY version", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut report = MigrationReport::default();
    for migration in POSTGRES {
        let checksum = migration.checksum();
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == migration.version) {
            check_unchanged(migration, recorded, &checksum)?;
            report.already_applied.push(migration.version);
            continue;
        }
        apply_one(client, migration, &checksum).await?;
        info!(
            store = "postgres",
            version = migration.version,
            name = migration.name,
            "Applied a migration."
        );
        report.applied.push(migration.version);
    }
    client.execute("SELECT pg_advisory_unlock($1)", &[&PG_MIGRATION_LOCK]).await?;
    Ok(report)
}

/// Applies one migration in its own transaction. Roles and memberships are cluster-wide while the
/// advisory lock is per database, so migrations of two databases of one cluster (parallel tests, a
/// fresh CI machine) can race on them and fail with a duplicate error; the migration is then
/// simply applied again, and its existence checks see the winner's objects.
async fn apply_one(
    client: &tokio_postgres::Client,
    migration: &Migration,
    checksum: &str,
) -> Result<(), ArchiveError> {
    use tokio_postgres::error::SqlState;
    let mut attempt = 0;
    loop {
        attempt += 1;
        client.batch_execute("BEGIN").await?;
        let outcome = async {
            client.batch_execute(migration.sql).await?;
            client
                .execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&migration.version, &migration.name, &checksum],
                )
                .await?;
            client.batch_execute("COMMIT").await
        }
        .await;
        let Err(error) = outcome else { return Ok(()) };
        let _ = client.batch_execute("ROLLBACK").await;
        let raced = [
            SqlState::UNIQUE_VIOLATION,
            SqlState::DUPLICATE_OBJECT,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ]
        .iter()
        .any(|code| error.code() == Some(code));
        if !raced || attempt >= 5 {
            return Err(error.into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
    }
}

fn check_unchanged(
    migration: &Migration,
    recorded: &str,
    embedded: &str,
) -> Result<(), ArchiveError> {
    if recorded == embedded {
        Ok(())
    } else {
        Err(ArchiveError::MigrationChanged {
            version: migration.version,
            name: migration.name,
            applied: recorded.to_owned(),
            embedded: embedded.to_owned(),
        })
    }
}

/// Applies pending ClickHouse migrations on the database named in `url` (its path), creating the
/// database first if needed.
pub async fn migrate_clickhouse(url: &str) -> Result<MigrationReport, ArchiveError> {
    let target = ClickhouseTarget::parse(url)?;
    target
        .server_client()
        .query(&format!("CREATE DATABASE IF NOT EXISTS `{}`", target.database))
        .execute()
        .await?;
    let client = target.client();
    client
        .query(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version Int32, name String, checksum String, applied_at DateTime) \
             ENGINE = ReplacingMergeTree() ORDER BY version",
        )
        .execute()
        .await?;
    let applied: Vec<(i32, String)> = client
        .query("SELECT version, any(checksum) AS checksum FROM schema_migrations GROUP BY version")
        .fetch_all::<AppliedRow>()
        .await?
        .into_iter()
        .map(|row| (row.version, row.checksum))
        .collect();
    let mut report = MigrationReport::default();
    for migration in CLICKHOUSE {
        let checksum = migration.checksum();
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == migration.version) {
            check_unchanged(migration, recorded, &checksum)?;
            report.already_applied.push(migration.version);
            continue;
        }
        for statement in statements(migration.sql) {
            client.query(&statement).execute().await?;
        }
        client
            .query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, now())")
            .bind(migration.version)
            .bind(migration.name)
            .bind(checksum.as_str())
            .execute()
            .await?;
        info!(
            store = "clickhouse",
            version = migration.version,
            name = migration.name,
            "Applied a migration."
        );
        report.applied.push(migration.version);
    }
    Ok(report)
}

/// A `schema_migrations` row as read back from ClickHouse.
#[derive(Debug, serde::Deserialize, ::clickhouse::Row)]
struct AppliedRow {
    version: i32,
    checksum: String,
}

/// Splits a ClickHouse migration into statements: the HTTP interface takes one per request.
/// Statements end with `;` at the end of a line; `--` comment lines are dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_owned();
            if !statement.is_empty() {
                out.push(statement);
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clickhouse_files_split_into_statements_without_comments() {
        let parts =
            statements("-- a; comment\nCREATE TABLE a (x UInt8)\nENGINE = Log;\n\nSELECT 1;\n");
        assert_eq!(parts, vec!["CREATE TABLE a (x UInt8)\nENGINE = Log", "SELECT 1"]);
    }

    #[test]
    fn migration_versions_are_strictly_increasing() {
        for set in [POSTGRES, CLICKHOUSE] {
            assert!(set.windows(2).all(|w| w[0].version < w[1].version));
        }
    }
}
