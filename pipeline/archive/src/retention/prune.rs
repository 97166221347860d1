//! `ttlc prune`: applies the retention periods of `[retention]` once.
//!
//! Order matters: events past the delete horizon are removed from `events_archive` and from
//! `events` (an event that old is never moved just to be deleted), then events past the archive
//! horizon move to `events_archive`, then the smaller tables follow, and ClickHouse last (it has
//! no transactions; PostgreSQL is the system of record). Every statement handles at most
//! `retention.batch_size` rows and commits on its own, so no statement holds locks on a big
//! table for long, and an interrupted prune keeps what it did: running it again continues.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use tracing::info;
use ttlc_core::config::Config;

use super::clickhouse_ops::{self, ChDelete};
use super::{Pseudonymizer, RetentionError, connect_maint, pseudonymizer};
use crate::clickhouse::ClickhouseTarget;

/// Key of the session advisory lock that keeps two prunes of one database apart ("ttlp").
const PRUNE_LOCK: i64 = 0x7474_6c70;

/// The columns `events` and `events_archive` share, in one order.
const EVENT_COLUMNS: &str = "event_id, stream_id, session_id, event_type, trigger_id, user_id, \
     unique_id, raw_type, source, seq_no, \"timestamp\", ingested_at, archived_at, event_data";

/// One line of the report: what happened (or, in a dry run, would happen) to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// `postgres` or `clickhouse`.
    pub store: &'static str,
    pub table: &'static str,
    /// `archived` (moved to `events_archive`), `deleted` or `pseudonymized`.
    pub action: &'static str,
    pub rows: u64,
    /// ClickHouse only: the delete mutation was still running when the wait ended.
    pub pending: bool,
}

/// What a prune did, per table, in the order it was done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub dry_run: bool,
    pub steps: Vec<Pruned>,
}

impl PruneReport {
    /// Rows of `table` in `store` that got `action` (0 when that step did not run).
    pub fn rows(&self, store: &str, table: &str, action: &str) -> u64 {
        self.steps
            .iter()
            .filter(|s| s.store == store && s.table == table && s.action == action)
            .map(|s| s.rows)
            .sum()
    }

    fn push(&mut self, table: &'static str, action: &'static str, rows: u64) {
        self.steps.push(Pruned { store: "postgres", table, action, rows, pending: false });
    }
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would be " } else { "" };
        for step in &self.steps {
            let note =
                if step.pending { " (mutation still running; re-run to confirm)" } else { "" };
            writeln!(
                f,
                "{:<10} {:<15} {:>10} {verb}{}{note}",
                step.store, step.table, step.rows, step.action
            )?;
        }
        Ok(())
    }
}

/// Applies retention as of `now`. With `dry_run`, counts what would change and changes nothing.
///
/// Pseudonymization (when `retention.users_inactive_days` > 0) needs `TTLC_PSEUDONYM_SECRET`;
/// without it nothing at all is done, so a half-configured prune never runs half its policy.
pub async fn prune(
    config: &Config,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<PruneReport, RetentionError> {
    let retention = &config.retention;
    let key = match (retention.users_inactive_days, dry_run) {
        (0, _) | (_, true) => None,
        _ => Some(pseudonymizer(config)?.ok_or(RetentionError::MissingKey)?),
    };
    let clickhouse = match retention.events_delete_days {
        0 => None,
        _ => Some(ClickhouseTarget::parse(&config.clickhouse.url)?.client()),
    };
    let client = connect_maint(config).await?;
    let locked: bool =
        client.query_one("SELECT pg_try_advisory_lock($1)", &[&PRUNE_LOCK]).await?.get(0);
    if !locked {
        return Err(RetentionError::AlreadyRunning);
    }
    let horizon = |days: u32| (days > 0).then(|| now - chrono::Duration::days(i64::from(days)));
    let delete_before = horizon(retention.events_delete_days);
    let archive_before = horizon(retention.events_archive_days);
    let pg = Pg { client: &client, batch: i64::from(retention.batch_size), dry_run };
    let mut report = PruneReport { dry_run, steps: Vec::new() };

    if let Some(before) = delete_before {
        let rows = pg.batches("events_archive", "\"timestamp\"", "event_id", before).await?;
        report.push("events_archive", "deleted", rows);
        let rows = pg.batches("events", "\"timestamp\"", "event_id", before).await?;
        report.push("events", "deleted", rows);
    }
    if let Some(before) = archive_before {
        report.push("events", "archived", pg.move_events(before, delete_before).await?);
    }
    if let Some(before) = horizon(retention.actions_log_days) {
        report.push(
            "actions_log",
            "deleted",
            pg.batches("actions_log", "created_at", "id", before).await?,
        );
    }
    if let Some(before) = horizon(retention.sessions_days) {
        let rows = pg.batches("sessions", "last_event_at", "session_id", before).await?;
        report.push("sessions", "deleted", rows);
        report.push(
            "streams",
            "deleted",
            pg.batches("streams", "last_seen", "stream_id", before).await?,
        );
    }
    if let Some(before) = horizon(retention.users_inactive_days) {
        let rows = match &key {
            Some(key) => pg.pseudonymize(key, before).await?,
            None => pg.count(INACTIVE_USERS, before).await?,
        };
        report.push("users", "pseudonymized", rows);
    }
    drop(client); // ends the session, which releases the advisory lock

    if let (Some(ch), Some(before)) = (clickhouse, delete_before) {
        let horizon = u32::try_from(before.timestamp()).unwrap_or(0);
        let outcome = if dry_run {
            ChDelete { rows: clickhouse_ops::count_older_than(&ch, horizon).await?, done: true }
        } else {
            let wait = Duration::from_millis(retention.clickhouse_wait_ms);
            clickhouse_ops::delete_older_than(&ch, horizon, wait).await?
        };
        report.steps.push(Pruned {
            store: "clickhouse",
            table: "events",
            action: "deleted",
            rows: outcome.rows,
            pending: !outcome.done,
        });
    }
    let rows = |table, action| report.rows("postgres", table, action);
    info!(
        dry_run,
        events_archived = rows("events", "archived"),
        events_deleted = rows("events", "deleted"),
        events_archive_deleted = rows("events_archive", "deleted"),
        actions_log_deleted = rows("actions_log", "deleted"),
        sessions_deleted = rows("sessions", "deleted"),
        streams_deleted = rows("streams", "deleted"),
        users_pseudonymized = rows("users", "pseudonymized"),
        clickhouse_events_deleted = report.rows("clickhouse", "events", "deleted"),
        clickhouse_pending = report.steps.iter().any(|s| s.pending),
        "Applied retention."
    );
    Ok(report)
}

/// Users inactive since `$1` and not pseudonymized yet.
const INACTIVE_USERS: &str =
    "SELECT count(*) FROM users WHERE last_seen < $1 AND pseudonymized_at IS NULL";

/// Replaces a batch of users by their pseudonymous rows, in one statement: the row is deleted
/// and re-inserted under the pseudonym (the id is the primary key), name and avatar dropped, and
/// moderator notes follow the user to the pseudonym. The activity check is repeated here so a
/// user who came back since the batch was read keeps their row. A user who came back after an
/// earlier pseudonymization and went quiet again folds into their existing pseudonymous row.
const PSEUDONYMIZE: &str = "
WITH p (user_id, pseudo_id, pseudo_unique) AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
), gone AS (
    DELETE FROM users u USING p
    WHERE u.user_id = p.user_id AND u.last_seen < $4 AND u.pseudonymized_at IS NULL
    RETURNING u.user_id, u.first_seen, u.last_seen, u.event_count, p.pseudo_id, p.pseudo_unique
), notes AS (
    UPDATE user_notes n SET user_id = g.pseudo_id FROM gone g WHERE n.user_id = g.user_id
    RETURNING 1
), stored AS (
    INSERT INTO users (user_id, unique_id, first_seen, last_seen, event_count, pseudonymized_at)
    SELECT pseudo_id, pseudo_unique, first_seen, last_seen, event_count, now() FROM gone
    ON CONFLICT (user_id) DO UPDATE SET
        first_seen = LEAST(users.first_seen, EXCLUDED.first_seen),
        last_seen = GREATEST(users.last_seen, EXCLUDED.last_seen),
        event_count = users.event_count + EXCLUDED.event_count,
        pseudonymized_at = now(),
        updated_at = now()
    RETURNING 1
)
SELECT count(*) FROM gone";

/// The PostgreSQL side of one prune.
struct Pg<'a> {
    client: &'a Client,
    batch: i64,
    dry_run: bool,
}

impl Pg<'_> {
    /// Deletes rows of `table` whose `column` is before `before`, a batch per statement (and so
    /// per transaction), picking each batch by its primary key `key`.
    async fn batches(
        &self,
        table: &str,
        column: &str,
        key: &str,
        before: DateTime<Utc>,
    ) -> Result<u64, RetentionError> {
        if self.dry_run {
            return self
                .count(&format!("SELECT count(*) FROM {table} WHERE {column} < $1"), before)
                .await;
        }
        let sql = format!(
            "WITH gone AS (DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} WHERE {column} < $1 LIMIT $2) RETURNING 1) \
             SELECT count(*) FROM gone"
        );
        self.repeat(&sql, &[&before, &self.batch]).await
    }

    /// Moves events older than `before` to `events_archive`. In a dry run the events past
    /// `delete_before` are left out: the real run deletes them before it moves anything.
    async fn move_events(
        &self,
        before: DateTime<Utc>,
        delete_before: Option<DateTime<Utc>>,
    ) -> Result<u64, RetentionError> {
        if self.dry_run {
            let row = self
                .client
                .query_one(
                    "SELECT count(*) FROM events WHERE \"timestamp\" < $1 \
                     AND ($2::timestamptz IS NULL OR \"timestamp\" >= $2)",
                    &[&before, &delete_before],
                )
                .await?;
            return Ok(row.get::<_, i64>(0).unsigned_abs());
        }
        // Delete and insert in one statement: an event is in exactly one of the two tables at
        // every moment, whatever fails when.
        let sql = format!(
            "WITH moved AS (DELETE FROM events WHERE event_id IN \
                 (SELECT event_id FROM events WHERE \"timestamp\" < $1 LIMIT $2) \
                 RETURNING {EVENT_COLUMNS}), \
             stored AS (INSERT INTO events_archive ({EVENT_COLUMNS}) \
                 SELECT {EVENT_COLUMNS} FROM moved ON CONFLICT (event_id) DO NOTHING RETURNING 1) \
             SELECT count(*) FROM moved"
        );
        self.repeat(&sql, &[&before, &self.batch]).await
    }

    /// Pseudonymizes users inactive since `before`, a batch at a time.
    async fn pseudonymize(
        &self,
        key: &Pseudonymizer,
        before: DateTime<Utc>,
    ) -> Result<u64, RetentionError> {
        let statement = self.client.prepare(PSEUDONYMIZE).await?;
        let mut total = 0;
        loop {
            let rows = self
                .client
                .query(
                    "SELECT user_id, unique_id FROM users \
                     WHERE last_seen < $1 AND pseudonymized_at IS NULL ORDER BY last_seen LIMIT $2",
                    &[&before, &self.batch],
                )
                .await?;
            let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let pseudo_ids: Vec<String> = ids.iter().map(|id| key.user_id(id)).collect();
            let pseudo_uniques: Vec<String> =
                rows.iter().map(|r| key.unique_id(r.get::<_, &str>(1))).collect();
            let done: i64 = self
                .client
                .query_one(&statement, &[&ids, &pseudo_ids, &pseudo_uniques, &before])
                .await?
                .get(0);
            total += done.unsigned_abs();
            // Fewer than a batch: that was the last one (users who came back were skipped and
            // are no longer inactive, so they are not read again).
            if (rows.len() as i64) < self.batch {
                return Ok(total);
            }
        }
    }

    /// Runs a batch statement (returning its row count) until a batch comes back short.
    async fn repeat(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, RetentionError> {
        let statement = self.client.prepare(sql).await?;
        let mut total = 0;
        loop {
            let done: i64 = self.client.query_one(&statement, params).await?.get(0);
            total += done.unsigned_abs();
            if done < self.batch {
                return Ok(total);
            }
        }
    }

    async fn count(&self, sql: &str, before: DateTime<Utc>) -> Result<u64, RetentionError> {
        let count: i64 = self.client.query_one(sql, &[&before]).await?.get(0);
        Ok(count.unsigned_abs())
    }
}
