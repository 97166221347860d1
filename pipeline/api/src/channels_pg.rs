//! `/channels` over PostgreSQL's `ingest_channels` table: the API writes what should run, and the
//! ingest processes (`ttlc ingest`, or the ingest task of `ttlc all`) run it and report back
//! (see `ttlc_ingest::control`). So `/channels` works the same whether ingest runs in this process
//! or elsewhere, and requested channels survive restarts of both.
//!
//! State shown per channel, all computed by PostgreSQL from its own clock:
//! - desired running, and an ingest process holds a live lease and reported recently: what it
//!   reported (`connecting`, `connected`, `backoff`, `ended`, `failed`);
//! - desired running, nobody reporting: `starting` just after the request, then `pending`, which
//!   tells an operator that no ingest process is picking it up (none running, all full, or the
//!   previous holder died and its lease has not expired yet);
//! - desired stopped: `stopping` while its ingest process still reports it, then `stopped`, or
//!   `failed` when ingest refused the request (see `lastError`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio_postgres::Row;
use ttlc_core::config::Config;

use crate::control::{ChannelControl, ChannelInfo, ControlError};
use crate::db::Pg;
use crate::error::ApiError;

/// Channel control through the `ingest_channels` table.
#[derive(Debug)]
pub struct PgChannels {
    pg: Pg,
    /// A report older than this means its ingest process is gone (or cut off); also how long a
    /// new request is `starting` before it is `pending`.
    stale: Duration,
}

/// The columns of [`ChannelInfo`], with the state derived as described in the module docs.
/// `$1` is the staleness bound in milliseconds.
const SELECT: &str = "
    SELECT unique_id, COALESCE(room_id, owner_stream_id), session_id, last_error,
           requested_at,
           CASE
               WHEN desired = 'stopped' AND live THEN 'stopping'
               WHEN desired = 'stopped' AND state = 'failed' THEN 'failed'
               WHEN desired = 'stopped' THEN 'stopped'
               WHEN live THEN COALESCE(state, 'connecting')
               WHEN requested_at > now() - $1 * interval '1 millisecond' THEN 'starting'
               ELSE 'pending'
           END,
           desired = 'running'
    FROM (SELECT *, claimed_by IS NOT NULL AND lease_until > now()
                    AND status_at > now() - $1 * interval '1 millisecond' AS live
          FROM ingest_channels) AS c";

fn info(row: &Row) -> Result<(ChannelInfo, bool), ControlError> {
    let get = || -> Result<(ChannelInfo, bool), tokio_postgres::Error> {
        let running: bool = row.try_get(6)?;
        Ok((
            ChannelInfo {
                unique_id: row.try_get(0)?,
                stream_id: row.try_get(1)?,
                session_id: row.try_get(2)?,
                last_error: row.try_get(3)?,
                // When it was last requested to run; a stopped channel is not "started".
                started_at: if running {
                    Some(row.try_get::<_, DateTime<Utc>>(4)?.to_rfc3339())
                } else {
                    None
                },
                state: row.try_get(5)?,
            },
            running,
        ))
    };
    get().map_err(|e| ControlError::Internal(format!("reading ingest_channels: {e}")))
}

fn control_error(error: ApiError) -> ControlError {
    match error {
        ApiError::Unavailable { .. } => ControlError::Unavailable(error.to_string()),
        other => ControlError::Internal(other.to_string()),
    }
}

impl PgChannels {
    /// Channel control over `config.postgres` (its own connection, opened on first use).
    pub fn new(config: &Config) -> Self {
        let poll = Duration::from_millis(config.ingest.control_poll_ms);
        PgChannels {
            pg: Pg::new(config),
            stale: poll.saturating_mul(5).max(Duration::from_secs(3)),
        }
    }

    fn stale_ms(&self) -> f64 {
        self.stale.as_millis() as f64
    }

    async fn one(&self, unique_id: &str) -> Result<Option<(ChannelInfo, bool)>, ControlError> {
        let sql = format!("{SELECT} WHERE unique_id = $2");
        let row = self
            .pg
            .query_opt(&sql, &[&self.stale_ms(), &unique_id])
            .await
            .map_err(control_error)?;
        row.as_ref().map(info).transpose()
    }
}

impl ChannelControl for PgChannels {
    fn start<'a>(
        &'a self,
        unique_id: &'a str,
        stream_id: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        async move {
            // One statement, so two concurrent starts cannot both succeed. It inserts, restarts a
            // stopped channel, or restarts one whose run ended (the LIVE ended or it failed),
            // like the in-process supervisor did. A streamer may not take over a channel whose
            // room is known to be another stream's.
            let started = self
                .pg
                .query_opt(
                    "INSERT INTO ingest_channels AS c (unique_id, owner_stream_id, desired, requested_at)
                     VALUES ($1, $2, 'running', now())
                     ON CONFLICT (unique_id) DO UPDATE SET
                         owner_stream_id = COALESCE($2, c.owner_stream_id),
                         desired = 'running', requested_at = now(),
                         state = NULL, last_error = NULL
                     WHERE (c.desired = 'stopped' OR c.state IN ('ended', 'failed'))
                       AND ($2::text IS NULL OR c.room_id IS NULL OR c.room_id = $2)
                     RETURNING unique_id",
                    &[&unique_id, &stream_id],
                )
                .await
                .map_err(control_error)?;
            let current = self.one(unique_id).await?;
            match (started, current) {
                (Some(_), Some((info, _))) => Ok(info),
                (None, Some((info, true)))
                    if !matches!(info.state.as_str(), "ended" | "failed") =>
                {
                    Err(ControlError::Conflict(format!("channel @{unique_id} is already running")))
                }
                (None, Some(_)) => Err(ControlError::Invalid(format!(
                    "channel @{unique_id} is the channel of another stream"
                ))),
                (_, None) => Err(ControlError::Unavailable("the channel vanished".into())),
            }
        }
        .boxed()
    }

    fn stop<'a>(&'a self, unique_id: &'a str) -> BoxFuture<'a, Result<ChannelInfo, ControlError>> {
        async move {
            let stopped = self
                .pg
                .query_opt(
                    "UPDATE ingest_channels SET desired = 'stopped', requested_at = now()
                     WHERE unique_id = $1 AND desired = 'running' RETURNING unique_id",
                    &[&unique_id],
                )
                .await
                .map_err(control_error)?;
            match (stopped, self.one(unique_id).await?) {
                (Some(_), Some((info, _))) => Ok(info),
                _ => Err(ControlError::NotFound(format!("channel @{unique_id} is not running"))),
            }
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, ControlError>> {
        async move {
            // Bounded: the table holds what operators requested, but a response must stay small.
            let sql = format!("{SELECT} ORDER BY unique_id LIMIT 10000");
            let rows = self.pg.query(&sql, &[&self.stale_ms()]).await.map_err(control_error)?;
            rows.iter().map(|r| info(r).map(|(i, _)| i)).collect()
        }
        .boxed()
    }
}
