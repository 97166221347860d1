//! The `ingest_channels` table as ingest sees it: requested channels in, leases and status out.
//!
//! One connection, opened lazily and replaced after any failure; it also `LISTEN`s on
//! `ttlc_channels` (the table's trigger notifies on every start and stop), and its notifications
//! become a bounded wake-up channel. Every statement runs under a timeout, so a half-open
//! connection costs one poll, not a stuck reconciler. All lease arithmetic uses PostgreSQL's
//! `now()`: the ingest hosts' clocks never matter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row};
use ttlc_core::config::Config;

use crate::error::IngestError;

/// The channel the table's trigger notifies on.
pub const NOTIFY_CHANNEL: &str = "ttlc_channels";

/// A row this process holds (or just claimed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) unique_id: String,
    pub(crate) running: bool,
    pub(crate) requested_at: DateTime<Utc>,
    pub(crate) owner_stream_id: Option<String>,
}

/// What this process reports for one channel it runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    pub(crate) unique_id: String,
    pub(crate) state: String,
    pub(crate) room_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) last_error: Option<String>,
}

struct Conn {
    client: Client,
    /// Closed when the connection ends.
    notified: mpsc::Receiver<()>,
}

/// The table, for one ingest process (`instance`).
pub(crate) struct ControlStore {
    pg: tokio_postgres::Config,
    app_role: String,
    timeout: Duration,
    instance: String,
    lease_ms: f64,
    conn: Option<Conn>,
}

impl std::fmt::Debug for ControlStore {
    // tokio_postgres::Config redacts the password in its Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlStore")
            .field("pg", &self.pg)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

fn db(context: &'static str, e: &tokio_postgres::Error) -> IngestError {
    IngestError::Database { context, message: e.to_string() }
}

/// The columns of [`Held`], of a table aliased `c`.
const HELD: &str = "c.unique_id, c.desired = 'running', c.requested_at, c.owner_stream_id";

fn held(row: &Row) -> Result<Held, IngestError> {
    let get = || -> Result<Held, tokio_postgres::Error> {
        Ok(Held {
            unique_id: row.try_get(0)?,
            running: row.try_get(1)?,
            requested_at: row.try_get(2)?,
            owner_stream_id: row.try_get(3)?,
        })
    };
    get().map_err(|e| db("reading ingest_channels", &e))
}

impl ControlStore {
    pub(crate) fn new(config: &Config, instance: String) -> Result<Self, IngestError> {
        let mut pg: tokio_postgres::Config =
            config.postgres.url.parse().map_err(|_| {
                IngestError::Fatal("postgres.url is not a valid PostgreSQL URL".into())
            })?;
        pg.connect_timeout(Duration::from_millis(config.postgres.connect_timeout_ms));
        let lease = Duration::from_millis(config.ingest.control_lease_ms);
        Ok(ControlStore {
            pg,
            app_role: config.postgres.app_role.clone(),
            // A third of the lease: a hung statement must not let the leases run out.
            timeout: (lease / 3).max(Duration::from_millis(500)),
            instance,
            lease_ms: lease.as_millis() as f64,
            conn: None,
        })
    }

    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// Forgets the connection after a failure; the next call opens a new one.
    pub(crate) fn reset(&mut self) {
        self.conn = None;
    }

    /// Resolves when a start or stop was notified. Never resolves without a connection, nor
    /// once it ended: the next poll reconnects (so a flapping connection cannot spin).
    pub(crate) async fn notified(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.notified.recv().await.is_some() {
                return;
            }
            self.conn = None;
        }
        std::future::pending().await
    }

    /// Drops notifications already queued: the reconcile about to run covers them.
    pub(crate) fn drain_notifications(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            while conn.notified.try_recv().is_ok() {}
        }
    }

    async fn client(&mut self) -> Result<&Client, IngestError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let conn = tokio::time::timeout(self.timeout.saturating_mul(2), self.connect())
                .await
                .map_err(|_| IngestError::Database {
                    context: "connecting to PostgreSQL",
                    message: "timed out".into(),
                })??;
            self.conn = Some(conn);
        }
        match self.conn.as_ref() {
            Some(conn) => Ok(&conn.client),
            None => Err(IngestError::Database {
                context: "connecting",
                message: "no connection".into(),
            }),
        }
    }

    async fn connect(&self) -> Result<Conn, IngestError> {
        let (client, mut connection) =
            self.pg.connect(NoTls).await.map_err(|e| db("connecting to PostgreSQL", &e))?;
        // A full channel already means "reconcile soon": notifications are coalesced, never queued.
        let (tx, notified) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        let _ = tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, "The channel control connection failed.");
                        break;
                    }
                }
            }
        });
        if !self.app_role.is_empty() {
            let role = self.app_role.replace('"', "\"\"");
            client
                .batch_execute(&format!("SET ROLE \"{role}\""))
                .await
                .map_err(|e| db("switching to the application role", &e))?;
        }
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .map_err(|e| db("listening for channel requests", &e))?;
        Ok(Conn { client, notified })
    }

    /// Runs one statement with the timeout; a failure or timeout drops the connection.
    async fn query(
        &mut self,
        context: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, IngestError> {
        let timeout = self.timeout;
        let client = self.client().await?;
        let result = match tokio::time::timeout(timeout, client.query(sql, params)).await {
            Ok(rows) => rows.map_err(|e| db(context, &e)),
            Err(_) => Err(IngestError::Database { context, message: "timed out".into() }),
        };
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Requests `ids` (channels given at boot) as desired running. A channel stopped through the
    /// API is started again (the command line is a request too); a running one keeps its
    /// `requested_at`, so this never restarts a channel another process runs.
    pub(crate) async fn request(&mut self, ids: &[String]) -> Result<(), IngestError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.query(
            "requesting the configured channels",
            "INSERT INTO ingest_channels AS c (unique_id, desired, requested_at)
             SELECT DISTINCT u, 'running', now() FROM unnest($1::text[]) AS u
             ON CONFLICT (unique_id) DO UPDATE SET
                 desired = 'running',
                 requested_at = CASE WHEN c.desired = 'stopped' THEN now() ELSE c.requested_at END",
            &[&ids],
        )
        .await
        .map(|_| ())
    }

    /// Renews the leases on the channels this process runs, taking over any whose lease is free
    /// (e.g. run without the table during an outage), and writes their status. Channels not
    /// returned are held by another process (or no longer exist): stop them here.
    pub(crate) async fn renew(&mut self, statuses: &[Status]) -> Result<Vec<Held>, IngestError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = statuses.iter().map(|s| s.unique_id.as_str()).collect();
        let states: Vec<&str> = statuses.iter().map(|s| s.state.as_str()).collect();
        let rooms: Vec<Option<&str>> = statuses.iter().map(|s| s.room_id.as_deref()).collect();
        let sessions: Vec<Option<&str>> =
            statuses.iter().map(|s| s.session_id.as_deref()).collect();
        let errors: Vec<Option<&str>> = statuses.iter().map(|s| s.last_error.as_deref()).collect();
        let (instance, lease) = (self.instance.clone(), self.lease_ms);
        let rows = self
            .query(
                "renewing channel leases",
                &format!(
                    "UPDATE ingest_channels AS c SET
                         claimed_by = $1,
                         lease_until = now() + $2 * interval '1 millisecond',
                         state = s.state,
                         room_id = COALESCE(s.room_id, c.room_id),
                         session_id = s.session_id,
                         last_error = s.last_error,
                         status_at = now()
                     FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                          AS s(unique_id, state, room_id, session_id, last_error)
                     WHERE c.unique_id = s.unique_id
                       AND (c.claimed_by = $1 OR c.claimed_by IS NULL OR c.lease_until < now())
                     RETURNING {HELD}",
                ),
                &[&instance, &lease, &ids, &states, &rooms, &sessions, &errors],
            )
            .await?;
        rows.iter().map(held).collect()
    }

    /// Claims up to `limit` channels desired running that nobody holds (or whose holder's lease
    /// ran out), oldest request first, skipping `running` (already here). Rows locked by another
    /// process's claim right now are skipped, not waited for: it is claiming them.
    pub(crate) async fn claim(
        &mut self,
        running: &[String],
        limit: i64,
    ) -> Result<Vec<Held>, IngestError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let (instance, lease) = (self.instance.clone(), self.lease_ms);
        let rows = self
            .query(
                "claiming channels",
                &format!(
                    "UPDATE ingest_channels AS c SET
                         claimed_by = $1,
                         lease_until = now() + $2 * interval '1 millisecond',
                         state = 'connecting', session_id = NULL, last_error = NULL,
                         status_at = now()
                     FROM (SELECT unique_id FROM ingest_channels
                           WHERE desired = 'running'
                             AND (claimed_by IS NULL OR claimed_by = $1 OR lease_until < now())
                             AND NOT (unique_id = ANY($3))
                           ORDER BY requested_at LIMIT $4
                           FOR UPDATE SKIP LOCKED) AS f
                     WHERE c.unique_id = f.unique_id
                     RETURNING {HELD}",
                ),
                &[&instance, &lease, &running, &limit],
            )
            .await?;
        rows.iter().map(held).collect()
    }

    /// Gives up this process's leases on `ids` after stopping them, recording `state` (and
    /// `error`); `refuse` also turns the request down (desired stopped), so no process retries.
    pub(crate) async fn release(
        &mut self,
        ids: &[String],
        state: &str,
        error: Option<&str>,
        refuse: bool,
    ) -> Result<(), IngestError> {
        if ids.is_empty() {
            return Ok(());
        }
        let instance = self.instance.clone();
        self.query(
            "releasing channels",
            "UPDATE ingest_channels SET
                 claimed_by = NULL, lease_until = NULL, state = $3, last_error = $4,
                 status_at = now(),
                 desired = CASE WHEN $5 THEN 'stopped' ELSE desired END
             WHERE unique_id = ANY($2) AND claimed_by = $1",
            &[&instance, &ids, &state, &error, &refuse],
        )
        .await
        .map(|_| ())
    }

    /// Gives up every lease of this process (at shutdown, after its channels stopped).
    pub(crate) async fn release_all(&mut self) -> Result<u64, IngestError> {
        let instance = self.instance.clone();
        let rows = self
            .query(
                "releasing every channel",
                "UPDATE ingest_channels SET claimed_by = NULL, lease_until = NULL,
                     state = 'stopped', status_at = now()
                 WHERE claimed_by = $1 RETURNING unique_id",
                &[&instance],
            )
            .await?;
        Ok(rows.len() as u64)
    }
}
