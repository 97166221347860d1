//! Deletes on the ClickHouse `events` table, in SQL that 18.16 and current releases share.
//!
//! ClickHouse deletes are mutations (`ALTER TABLE … DELETE WHERE`): the statement returns at once
//! and the server rewrites the affected parts in the background, so after submitting one we poll
//! `system.mutations` until it is done or `retention.clickhouse_wait_ms` passed. A mutation is
//! idempotent, so a command that stopped waiting can simply be run again. Whole months past the
//! horizon are dropped as partitions instead, which is instant and rewrites nothing.

use std::time::{Duration, Instant};

use ::clickhouse::Client;

use super::RetentionError;

/// What a ClickHouse delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChDelete {
    /// Events (distinct event ids, as analytics count them) the delete removes.
    pub rows: u64,
    /// False when the mutation was still running after the wait: the rows will go, but later.
    pub done: bool,
}

/// Distinct events older than `horizon` (unix seconds).
pub(super) async fn count_older_than(client: &Client, horizon: u32) -> Result<u64, RetentionError> {
    Ok(client
        .query("SELECT count() FROM events FINAL WHERE timestamp < toDateTime(?)")
        .bind(horizon)
        .fetch_one::<u64>()
        .await?)
}

/// Deletes every event older than `horizon` (unix seconds).
pub(super) async fn delete_older_than(
    client: &Client,
    horizon: u32,
    wait: Duration,
) -> Result<ChDelete, RetentionError> {
    let rows = count_older_than(client, horizon).await?;
    if rows == 0 {
        return Ok(ChDelete { rows, done: true });
    }
    // Months that end before the horizon's month: every row in them is past the horizon, and an
    // event of a later time can never land in them, so dropping them races with no insert.
    let months: Vec<String> = client
        .query(
            "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() \
             AND table = 'events' AND active \
             AND toUInt32OrZero(partition) < toYYYYMM(toDateTime(?))",
        )
        .bind(horizon)
        .fetch_all::<String>()
        .await?;
    for month in months {
        // The partition id of `toYYYYMM(timestamp)` is the month number itself.
        let Ok(month) = month.parse::<u32>() else { continue };
        client.query(&format!("ALTER TABLE events DROP PARTITION {month}")).execute().await?;
    }
    let left: u64 = client
        .query("SELECT count() FROM events WHERE timestamp < toDateTime(?)")
        .bind(horizon)
        .fetch_one()
        .await?;
    if left == 0 {
        return Ok(ChDelete { rows, done: true });
    }
    client
        .query("ALTER TABLE events DELETE WHERE timestamp < toDateTime(?)")
        .bind(horizon)
        .execute()
        .await?;
    Ok(ChDelete { rows, done: wait_for_mutations(client, wait).await? })
}

/// The user ids ClickHouse has seen with this @uniqueId (a handle can change hands).
pub(super) async fn user_ids_with_unique_id(
    client: &Client,
    unique_id: &str,
) -> Result<Vec<String>, RetentionError> {
    Ok(client
        .query("SELECT DISTINCT user_id FROM events WHERE unique_id = ? ORDER BY user_id")
        .bind(unique_id)
        .fetch_all::<String>()
        .await?)
}

/// Distinct events of these users.
pub(super) async fn count_users(
    client: &Client,
    user_ids: &[String],
) -> Result<u64, RetentionError> {
    if user_ids.is_empty() {
        return Ok(0);
    }
    Ok(client
        .query("SELECT count() FROM events FINAL WHERE has(?, user_id)")
        .bind(user_ids)
        .fetch_one::<u64>()
        .await?)
}

/// Deletes every event of these users.
pub(super) async fn delete_users(
    client: &Client,
    user_ids: &[String],
    wait: Duration,
) -> Result<ChDelete, RetentionError> {
    let rows = count_users(client, user_ids).await?;
    if rows == 0 {
        return Ok(ChDelete { rows, done: true });
    }
    client
        .query("ALTER TABLE events DELETE WHERE has(?, user_id)")
        .bind(user_ids)
        .execute()
        .await?;
    Ok(ChDelete { rows, done: wait_for_mutations(client, wait).await? })
}

/// Waits until no mutation of `events` is pending; false if `wait` passed first.
async fn wait_for_mutations(client: &Client, wait: Duration) -> Result<bool, RetentionError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let pending: u64 = client
            .query(
                "SELECT count() FROM system.mutations WHERE database = currentDatabase() \
                 AND table = 'events' AND is_done = 0",
            )
            .fetch_one()
            .await?;
        if pending == 0 {
            return Ok(true);
        }
        if start.elapsed() >= wait {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(wait.saturating_sub(start.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
