//! The `archive-pg` stage: UnifiedEvents into PostgreSQL, the system of record.
//!
//! Per batch, in ONE transaction, one of two paths (`sql.rs` explains both): the fast path binary-
//! COPYs straight into `events` and upserts users, streams and sessions from folds computed in
//! Rust; if any event of the batch is already stored (re-delivery), that transaction rolls back
//! and the staging path runs instead: COPY into a session-local staging table, then one statement
//! that inserts with `ON CONFLICT (event_id) DO NOTHING` and folds only the rows it returned.
//! Either way `users.event_count` counts each event once however often Kafka delivers it, and
//! `handle` returns after COMMIT, so the runner commits offsets only for durable events.
//!
//! Connection: the configured URL logs in (the schema owner locally), then `SET ROLE ttlc_app`
//! (`postgres.app_role`) so every write runs with application privileges: INSERT and SELECT on
//! `events`, never UPDATE or DELETE. Retention and erasure use `ttlc_maint` instead.
//!
//! Failures follow one retry predicate (like Vector's postgres sink): I/O, a lost connection,
//! timeouts, deadlocks, serialization failures and server overload are retryable (the connection is
//! dropped and re-opened on the next attempt); data errors (SQLSTATE classes 22, 23, 54) are
//! specific to some records, so the batch is bisected until the offending records are found and
//! only those go to the DLQ; anything else (privileges, missing tables) is fatal.

use std::ops::Range;
use std::time::Duration;

use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{Client, NoTls, Statement};
use tracing::{debug, warn};
use ttlc_core::config::Config;
use ttlc_core::{Disposition, InputRecord, Stage, StageError};
use ttlc_schemas::UnifiedEvent;
use ttlc_topics::Topic;

mod fold;
mod sql;

use crate::columns::raw_type;
use crate::decode::{decode_batch, finish, rejected_by_store};
use crate::error::ArchiveError;
use crate::migrate::migrate_postgres;
use sql::{
    COPY_TYPES, MERGE_SQL, STAGING_DDL, UPSERT_SESSIONS_SQL, UPSERT_STREAMS_SQL, UPSERT_USERS_SQL,
};

/// After a batch hit already-stored events, this many following batches take the staging path
/// directly: re-delivery comes in runs (a restarted consumer re-reads its last uncommitted
/// stretch), and a failed fast attempt costs a whole COPY.
const STAGED_AFTER_CONFLICT: u32 = 8;

/// One open connection with its statements prepared.
struct PgConn {
    client: Client,
    copy_events: Statement,
    copy_staging: Statement,
    merge: Statement,
    upsert_users: Statement,
    upsert_streams: Statement,
    upsert_sessions: Statement,
}

/// Which write path a transaction takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// COPY into `events`; fails with a unique violation if any event is already stored.
    Fast,
    /// COPY into staging, insert what is new.
    Staged,
}

/// How a failed attempt should be handled.
#[derive(Debug)]
enum Failure {
    /// Transient: drop the connection, let the runner back off and retry the batch.
    Retry(String, Box<dyn std::error::Error + Send + Sync>),
    /// Some records are bad: bisect to find them.
    Data(tokio_postgres::Error),
    /// Retrying cannot help and it is not about particular records: stop the stage.
    Fatal(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        let class = error.code().map(|c| &c.code()[..2]);
        match class {
            Some("22" | "23" | "54") => Failure::Data(error),
            Some("08" | "25" | "40" | "53" | "55" | "57" | "58" | "XX") => {
                Failure::Retry("writing to PostgreSQL".into(), error.into())
            }
            Some(_) => Failure::Fatal(error),
            // A parameter our code could not serialize is about that record.
            None if std::error::Error::source(&error)
                .is_some_and(|s| s.downcast_ref::<serde_json::Error>().is_some()) =>
            {
                Failure::Data(error)
            }
            // No SQLSTATE: the connection broke, an I/O error, a protocol desync.
            None => Failure::Retry("talking to PostgreSQL".into(), error.into()),
        }
    }
}

/// The `archive-pg` stage.
pub struct PgArchiver {
    pg: tokio_postgres::Config,
    app_role: String,
    connect_timeout: Duration,
    write_timeout: Duration,
    conn: Option<PgConn>,
    staged_batches_left: u32,
}

impl std::fmt::Debug for PgArchiver {
    // tokio_postgres::Config redacts the password in its Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgArchiver")
            .field("pg", &self.pg)
            .field("app_role", &self.app_role)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl PgArchiver {
    /// Prepares the stage from `config.postgres`: applies migrations when `migrate_on_start` is
    /// set, then opens the connection. A database that is down is not an error here when
    /// migrations are off: `handle` reconnects and reports retryable errors until it is back.
    pub async fn connect(config: &Config) -> Result<Self, ArchiveError> {
        let settings = &config.postgres;
        if settings.migrate_on_start {
            migrate_postgres(&settings.url).await?;
        }
        let pg: tokio_postgres::Config = settings.url.parse()?;
        let mut archiver = PgArchiver {
            pg,
            app_role: settings.app_role.clone(),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
            write_timeout: Duration::from_millis(settings.write_timeout_ms),
            conn: None,
            staged_batches_left: 0,
        };
        archiver.pg.connect_timeout(archiver.connect_timeout);
        match archiver.open().await {
            Ok(conn) => archiver.conn = Some(conn),
            Err(Failure::Retry(context, e)) => {
                warn!(error = %e, "PostgreSQL is not reachable yet ({context}); the stage will retry.");
            }
            Err(Failure::Data(e) | Failure::Fatal(e)) => return Err(e.into()),
        }
        Ok(archiver)
    }

    /// Opens a connection running as the application role, with the staging table and the
    /// statements ready.
    async fn open(&self) -> Result<PgConn, Failure> {
        let (client, connection) =
            match tokio::time::timeout(self.connect_timeout, self.pg.connect(NoTls)).await {
                Ok(result) => result?,
                Err(elapsed) => {
                    return Err(Failure::Retry("connecting to PostgreSQL".into(), elapsed.into()));
                }
            };
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                warn!(error = %error, "The PostgreSQL connection ended with an error.");
            }
        });
        // temp_buffers can only change before the session's first temporary table; the default
        // 8 MB would spill a 5,000-event staging table to disk.
        let mut setup = String::from("SET temp_buffers = '64MB';");
        if !self.app_role.is_empty() {
            setup.push_str(&format!("SET ROLE \"{}\";", self.app_role.replace('"', "\"\"")));
        }
        client.batch_execute(&setup).await?;
        client.batch_execute(STAGING_DDL).await?;
        Ok(PgConn {
            copy_events: client.prepare(&sql::copy_events_sql()).await?,
            copy_staging: client.prepare(&sql::copy_staging_sql()).await?,
            merge: client.prepare(MERGE_SQL).await?,
            upsert_users: client.prepare(UPSERT_USERS_SQL).await?,
            upsert_streams: client.prepare(UPSERT_STREAMS_SQL).await?,
            upsert_sessions: client.prepare(UPSERT_SESSIONS_SQL).await?,
            client,
        })
    }

    /// Writes `events` in one transaction (two when the fast path meets stored events); returns
    /// how many were new.
    async fn write_once(&mut self, events: &[(usize, UnifiedEvent)]) -> Result<i64, Failure> {
        if self.staged_batches_left > 0 {
            self.staged_batches_left -= 1;
        } else {
            match self.write_path(events, Path::Fast).await {
                Err(Failure::Data(error)) if is_stored_already(&error) => {
                    debug!("The batch holds events already stored; taking the staging path.");
                    self.staged_batches_left = STAGED_AFTER_CONFLICT;
                }
                other => return other,
            }
        }
        self.write_path(events, Path::Staged).await
    }

    async fn write_path(
        &mut self,
        events: &[(usize, UnifiedEvent)],
        path: Path,
    ) -> Result<i64, Failure> {
        let conn = match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => self.open().await?,
        };
        let conn = self.conn.insert(conn);
        match tokio::time::timeout(self.write_timeout, write_batch(conn, events, path)).await {
            Ok(Ok(inserted)) => Ok(inserted),
            Ok(Err(error)) => {
                let failure = Failure::from(error);
                if !matches!(failure, Failure::Data(_)) {
                    // Re-open on the next attempt rather than trust a connection that failed.
                    self.conn = None;
                }
                Err(failure)
            }
            Err(elapsed) => {
                self.conn = None;
                Err(Failure::Retry("writing a batch to PostgreSQL".into(), elapsed.into()))
            }
        }
    }

    /// Stores `events`, bisecting around records PostgreSQL refuses; their slots in
    /// `dispositions` become DLQ rejections.
    async fn store(
        &mut self,
        events: &[(usize, UnifiedEvent)],
        dispositions: &mut [Option<Disposition>],
    ) -> Result<(), StageError> {
        // A stack of ranges still to write: the whole batch, then halves of refused ranges.
        let mut pending: Vec<Range<usize>> = Vec::with_capacity(16);
        pending.push(0..events.len());
        let mut inserted = 0;
        while let Some(range) = pending.pop() {
            match self.write_once(&events[range.clone()]).await {
                Ok(count) => inserted += count,
                Err(Failure::Data(error)) if range.len() == 1 => {
                    let (index, event) = &events[range.start];
                    warn!(event_id = %event.event_id, session_id = %event.session_id, error = %error,
                          "PostgreSQL refused an event; it goes to the DLQ.");
                    let mut rejection = rejected_by_store(event, "PostgreSQL", error.to_string());
                    if let (Disposition::Reject(r), Some(raw)) = (&mut rejection, raw_type(event)) {
                        r.raw_type = Some(raw.to_owned());
                    }
                    dispositions[*index] = Some(rejection);
                }
                Err(Failure::Data(error)) => {
                    debug!(error = %error, records = range.len(), "Bisecting a batch PostgreSQL refused.");
                    let mid = range.start + range.len() / 2;
                    // Popped in order: the first half is retried first.
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                }
                Err(Failure::Retry(context, source)) => {
                    warn!(error = %source, "{context} failed; the batch will be retried.");
                    return Err(StageError::retryable(context, source));
                }
                Err(Failure::Fatal(error)) => {
                    return Err(StageError::fatal("writing to PostgreSQL", error));
                }
            }
        }
        debug!(events = events.len(), inserted, "Archived a batch in PostgreSQL.");
        Ok(())
    }
}

/// A unique violation on the events primary key: the fast path met an event already stored.
fn is_stored_already(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some("events_pkey")
    })
}

/// COPY, fold and commit one set of events along `path`; returns how many were new.
async fn write_batch(
    conn: &mut PgConn,
    events: &[(usize, UnifiedEvent)],
    path: Path,
) -> Result<i64, tokio_postgres::Error> {
    let tx = conn.client.transaction().await?;
    let target = match path {
        Path::Fast => &conn.copy_events,
        Path::Staged => &conn.copy_staging,
    };
    let writer = BinaryCopyInWriter::new(tx.copy_in(target).await?, &COPY_TYPES);
    pin_mut!(writer);
    for (_, event) in events {
        let trigger_id = i16::try_from(event.trigger_id).unwrap_or(i16::MAX);
        let row: [&(dyn ToSql + Sync); 13] = [
            &event.event_id,
            &event.stream_id,
            &event.session_id,
            &event.event_type.as_str(),
            &trigger_id,
            &event.user.user_id,
            &event.user.unique_id,
            &raw_type(event),
            &event.source.as_str(),
            &event.seq_no,
            &event.timestamp,
            &event.ingested_at,
            &Json(event),
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    let inserted = match path {
        Path::Staged => tx.query_one(&conn.merge, &[]).await?.get(0),
        Path::Fast => {
            let (users, streams, sessions) = fold::fold(events.iter().map(|(_, e)| e));
            tx.execute(
                &conn.upsert_users,
                &[
                    &users.user_id,
                    &users.unique_id,
                    &users.display_name,
                    &users.avatar_url,
                    &users.first_seen,
                    &users.last_seen,
                    &users.event_count,
                ],
            )
            .await?;
            tx.execute(
                &conn.upsert_streams,
                &[
                    &streams.stream_id,
                    &streams.first_seen,
                    &streams.last_seen,
                    &streams.last_session_id,
                    &streams.event_count,
                ],
            )
            .await?;
            tx.execute(
                &conn.upsert_sessions,
                &[
                    &sessions.session_id,
                    &sessions.stream_id,
                    &sessions.source,
                    &sessions.started_at,
                    &sessions.ended_at,
                    &sessions.end_reason,
                    &sessions.first_event_at,
                    &sessions.last_event_at,
                    &sessions.event_count,
                ],
            )
            .await?;
            events.len() as i64
        }
    };
    tx.commit().await?;
    Ok(inserted)
}

impl Stage for PgArchiver {
    fn name(&self) -> &'static str {
        "archive-pg"
    }

    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Unified]
    }

    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        let mut decoded = decode_batch(batch);
        if !decoded.events.is_empty() {
            self.store(&decoded.events, &mut decoded.dispositions).await?;
        }
        Ok(finish(decoded.dispositions))
    }
}
