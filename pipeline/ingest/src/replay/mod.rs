//! The replay provider: a stored session, read from PostgreSQL, re-published to `raw` as a new
//! session (`source: replay`).
//!
//! PostgreSQL keeps the normalized event, not TikTok's bytes, so each stored UnifiedEvent goes out
//! inside a raw.v1 envelope (`type` = `Replay.<EVENTTYPE>`, `data` = `{unifiedEvent, replayOf}`,
//! see `schemas/README.md`) and normalize re-derives it under the new sessionId, which gives every
//! replayed event a new eventId. Nothing is filtered here: rules decide what a replay may trigger
//! (`meta.skipReplay`).
//!
//! Reading is keyset-paginated in `seq_no, event_id` order (NULL seqNos last, as PostgreSQL sorts
//! them), so memory stays at one page however long the session. Pacing follows the original gaps
//! between event times divided by the speed factor, and never exceeds the rate cap (a token
//! bucket with a 10 ms burst, because timers cannot sleep for the 200 µs a 5,000/s cap needs).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_schemas::raw::RAW_SCHEMA_VERSION;
use ttlc_schemas::{Provider, RawEnvelope, Source};

use crate::error::IngestError;
use crate::publish::EnvelopeSink;

mod pace;

use pace::Pacer;

/// Default rate cap, events per second.
pub const DEFAULT_RATE_CAP: u32 = 5_000;
/// Rows per page read from PostgreSQL.
const PAGE_SIZE: i64 = 1_000;
/// Attempts per page before the replay gives up on PostgreSQL.
const PAGE_ATTEMPTS: u32 = 5;

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// 1.0 = original timing, 2.0 = twice as fast, 0 = as fast as the rate cap allows.
    pub speed: f64,
    /// Events per second never exceeded (0 is treated as 1).
    pub rate_cap: u32,
    /// The replay run's sessionId (a UUID; one per run).
    pub new_session_id: String,
}

impl ReplayOptions {
    /// A fresh UUID v4 session at `speed` under the default cap.
    pub fn new(speed: f64) -> Self {
        ReplayOptions {
            speed,
            rate_cap: DEFAULT_RATE_CAP,
            new_session_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Progress reported after every published envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    pub sent: u64,
    /// Stored events of the session when the replay started.
    pub total: u64,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStats {
    pub original_session_id: String,
    pub new_session_id: String,
    pub stream_id: String,
    /// Envelopes handed to the publisher.
    pub sent: u64,
    pub total: u64,
    pub elapsed: Duration,
    /// Stopped by the shutdown token before the end of the session.
    pub interrupted: bool,
}

/// A replay that found its session and recorded the new one; [`PreparedReplay::run`] publishes.
/// Split in two so the API can answer 404 or 202 at once and publish in the background.
#[derive(Debug)]
pub struct PreparedReplay {
    pg: Pg,
    original: String,
    options: ReplayOptions,
    stream_id: String,
    total: u64,
    first_event_at: DateTime<Utc>,
}

/// Reads `session_id`'s events and publishes them into `sink` as `opts.new_session_id`, until
/// the end of the session or `shutdown`. `progress` sees every envelope sent.
pub async fn replay_session(
    config: &Config,
    session_id: &str,
    opts: ReplayOptions,
    sink: &EnvelopeSink,
    shutdown: &CancellationToken,
    progress: impl FnMut(ReplayProgress),
) -> Result<ReplayStats, IngestError> {
    PreparedReplay::prepare(config, session_id, opts).await?.run(sink, shutdown, progress).await
}

impl PreparedReplay {
    /// Checks the options, finds the session (no stored events → [`IngestError::SessionNotFound`])
    /// and records the new session as a replay of it.
    pub async fn prepare(
        config: &Config,
        session_id: &str,
        options: ReplayOptions,
    ) -> Result<Self, IngestError> {
        Self::prepare_in_stream(config, session_id, None, options).await
    }

    /// Like [`PreparedReplay::prepare`], but a session of a stream other than `scope` (when
    /// given) is not found: the API's caller may only replay sessions of its own stream.
    pub async fn prepare_in_stream(
        config: &Config,
        session_id: &str,
        scope: Option<&str>,
        options: ReplayOptions,
    ) -> Result<Self, IngestError> {
        if !options.speed.is_finite() || options.speed < 0.0 {
            return Err(IngestError::Fatal(format!(
                "speed must be a finite number >= 0, got {}",
                options.speed
            )));
        }
        if uuid::Uuid::parse_str(&options.new_session_id).is_err() {
            return Err(IngestError::Fatal("the new session id must be a UUID".into()));
        }
        let pg = Pg::new(config)?;
        let client = pg.connect().await?;
        let summary = client
            .query_one(
                "SELECT min(stream_id), count(*), min(\"timestamp\"), max(\"timestamp\") \
                 FROM events WHERE session_id = $1",
                &[&session_id],
            )
            .await
            .map_err(|e| db("reading the session", &e))?;
        let total: i64 = summary.get(1);
        let (Some(stream_id), Some(first), Some(last)) = (
            summary.get::<_, Option<String>>(0),
            summary.get::<_, Option<DateTime<Utc>>>(2),
            summary.get::<_, Option<DateTime<Utc>>>(3),
        ) else {
            return Err(IngestError::SessionNotFound(session_id.to_owned()));
        };
        if scope.is_some_and(|s| s != stream_id) {
            return Err(IngestError::SessionNotFound(session_id.to_owned()));
        }
        // started_at and the event bounds are the original's: replayed events keep their event
        // times, and archive-pg folds those into this row with LEAST/GREATEST (adding to
        // event_count), so copying them now gives the row its final shape from the start.
        client
            .execute(
                "INSERT INTO sessions (session_id, stream_id, source, replay_of, started_at, \
                                       first_event_at, last_event_at, event_count) \
                 VALUES ($1, $2, 'replay', $3, \
                         COALESCE((SELECT started_at FROM sessions WHERE session_id = $3), $4), \
                         $4, $5, 0) \
                 ON CONFLICT (session_id) DO UPDATE SET source = 'replay', \
                     replay_of = EXCLUDED.replay_of",
                &[&options.new_session_id, &stream_id, &session_id, &first, &last],
            )
            .await
            .map_err(|e| db("recording the replay session", &e))?;
        Ok(PreparedReplay {
            pg,
            original: session_id.to_owned(),
            options,
            stream_id,
            total: u64::try_from(total).unwrap_or(0),
            first_event_at: first,
        })
    }

    /// The replay run's sessionId.
    pub fn new_session_id(&self) -> &str {
        &self.options.new_session_id
    }

    /// The stream the session belongs to.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// Stored events to replay.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Publishes every stored event in order, paced, until the end or `shutdown`.
    pub async fn run(
        self,
        sink: &EnvelopeSink,
        shutdown: &CancellationToken,
        mut progress: impl FnMut(ReplayProgress),
    ) -> Result<ReplayStats, IngestError> {
        let start = Instant::now();
        let mut pacer = Pacer::new(&self.options, self.first_event_at, start);
        let mut cursor = Cursor::Start;
        let mut client: Option<Client> = None;
        let mut sent = 0u64;
        let mut interrupted = false;
        'pages: loop {
            let page = tokio::select! {
                _ = shutdown.cancelled() => { interrupted = true; break 'pages; }
                page = self.pg.page(&mut client, &self.original, &cursor, shutdown) => page?,
            };
            let Some(page) = page else {
                interrupted = true;
                break;
            };
            if page.is_empty() {
                match cursor {
                    // Events with a seqNo are done: go on with those without one.
                    Cursor::Start | Cursor::Seq(..) => {
                        cursor = Cursor::NullSeq(None);
                        continue;
                    }
                    Cursor::NullSeq(_) => break,
                }
            }
            for row in page {
                cursor = match row.seq_no {
                    Some(seq) => Cursor::Seq(seq, row.event_id),
                    None => Cursor::NullSeq(Some(row.event_id)),
                };
                let seq_no = row.seq_no.unwrap_or(i64::try_from(sent).unwrap_or(i64::MAX));
                let wait = pacer.due(row.timestamp);
                tokio::select! {
                    _ = shutdown.cancelled() => { interrupted = true; break 'pages; }
                    () = tokio::time::sleep_until(wait) => {}
                }
                let env =
                    self.envelope(row.stream_id, row.event_type, seq_no, row.timestamp, row.data);
                let queued = tokio::select! {
                    _ = shutdown.cancelled() => { interrupted = true; break 'pages; }
                    r = sink.send(env) => r,
                };
                if queued.is_err() {
                    // The publisher is gone: the process is shutting down.
                    interrupted = true;
                    break 'pages;
                }
                sent += 1;
                pacer.sent();
                progress(ReplayProgress { sent, total: self.total.max(sent) });
            }
        }
        Ok(ReplayStats {
            original_session_id: self.original,
            new_session_id: self.options.new_session_id,
            stream_id: self.stream_id,
            sent,
            total: self.total,
            elapsed: start.elapsed(),
            interrupted,
        })
    }

    fn envelope(
        &self,
        stream_id: String,
        event_type: String,
        seq_no: i64,
        timestamp: DateTime<Utc>,
        stored: Value,
    ) -> RawEnvelope {
        let mut data = Map::with_capacity(2);
        data.insert("unifiedEvent".into(), stored);
        data.insert("replayOf".into(), Value::String(self.original.clone()));
        RawEnvelope {
            schema_version: RAW_SCHEMA_VERSION.into(),
            stream_id,
            session_id: self.options.new_session_id.clone(),
            source: Source::Replay,
            raw_type: format!("Replay.{event_type}"),
            seq_no,
            timestamp,
            ingested_at: Utc::now(),
            provider: Provider::Replay,
            data: Some(data),
            data_b64: None,
        }
    }
}

/// Where the next page starts: rows with a seqNo first (by seqNo, eventId), then rows without.
#[derive(Debug)]
enum Cursor {
    Start,
    Seq(i64, String),
    NullSeq(Option<String>),
}

#[derive(Debug)]
struct Row {
    event_id: String,
    stream_id: String,
    event_type: String,
    seq_no: Option<i64>,
    timestamp: DateTime<Utc>,
    data: Value,
}

/// PostgreSQL access for one replay: connection settings, reconnect on failure.
#[derive(Debug)]
struct Pg {
    config: tokio_postgres::Config,
    app_role: String,
    query_timeout: Duration,
}

fn db(context: &'static str, e: &tokio_postgres::Error) -> IngestError {
    IngestError::Database { context, message: e.to_string() }
}

const COLUMNS: &str = "event_id, stream_id, event_type, seq_no, \"timestamp\", event_data";

impl Pg {
    fn new(config: &Config) -> Result<Self, IngestError> {
        let mut pg: tokio_postgres::Config =
            config.postgres.url.parse().map_err(|_| {
                IngestError::Fatal("postgres.url is not a valid PostgreSQL URL".into())
            })?;
        pg.connect_timeout(Duration::from_millis(config.postgres.connect_timeout_ms));
        Ok(Pg {
            config: pg,
            app_role: config.postgres.app_role.clone(),
            query_timeout: Duration::from_millis(config.postgres.write_timeout_ms),
        })
    }

    /// A connection running as the application role (read events, write sessions; nothing more).
    async fn connect(&self) -> Result<Client, IngestError> {
        let (client, connection) =
            self.config.connect(NoTls).await.map_err(|e| db("connecting to PostgreSQL", &e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "The replay's PostgreSQL connection ended with an error.");
            }
        });
        if !self.app_role.is_empty() {
            let role = self.app_role.replace('"', "\"\"");
            client
                .batch_execute(&format!("SET ROLE \"{role}\""))
                .await
                .map_err(|e| db("switching to the application role", &e))?;
        }
        Ok(client)
    }

    /// The next page after `cursor`, reconnecting and retrying with backoff when PostgreSQL
    /// fails; `None` when `shutdown` fired while waiting.
    async fn page(
        &self,
        client: &mut Option<Client>,
        session: &str,
        cursor: &Cursor,
        shutdown: &CancellationToken,
    ) -> Result<Option<Vec<Row>>, IngestError> {
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match self.try_page(client, session, cursor).await {
                Ok(rows) => return Ok(Some(rows)),
                Err(error) if attempt >= PAGE_ATTEMPTS => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, attempt, "Reading the stored session failed; retrying.");
                    *client = None;
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(None),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    attempt += 1;
                }
            }
        }
    }

    async fn try_page(
        &self,
        client: &mut Option<Client>,
        session: &str,
        cursor: &Cursor,
    ) -> Result<Vec<Row>, IngestError> {
        let c = match client.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.connect().await?,
        };
        let c = client.insert(c);
        let query = async {
            match cursor {
                // The (session_id, seq_no) index serves the range; ties on seqNo sort by eventId.
                Cursor::Start => {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM events WHERE session_id = $1 AND seq_no IS NOT NULL \
                         ORDER BY seq_no, event_id LIMIT $2"
                    );
                    c.query(&sql, &[&session, &PAGE_SIZE]).await
                }
                Cursor::Seq(seq, id) => {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM events WHERE session_id = $1 AND seq_no IS NOT NULL \
                         AND (seq_no, event_id) > ($2, $3) ORDER BY seq_no, event_id LIMIT $4"
                    );
                    c.query(&sql, &[&session, seq, id, &PAGE_SIZE]).await
                }
                Cursor::NullSeq(after) => {
                    let sql = format!(
                        "SELECT {COLUMNS} FROM events WHERE session_id = $1 AND seq_no IS NULL \
                         AND ($2::text IS NULL OR event_id > $2) ORDER BY event_id LIMIT $3"
                    );
                    c.query(&sql, &[&session, after, &PAGE_SIZE]).await
                }
            }
        };
        let rows = match tokio::time::timeout(self.query_timeout, query).await {
            Ok(rows) => rows.map_err(|e| db("reading stored events", &e))?,
            Err(_) => {
                *client = None;
                return Err(IngestError::Database {
                    context: "reading stored events",
                    message: "timed out".into(),
                });
            }
        };
        rows.iter()
            .map(|r| {
                Ok(Row {
                    event_id: r.try_get(0)?,
                    stream_id: r.try_get(1)?,
                    event_type: r.try_get(2)?,
                    seq_no: r.try_get(3)?,
                    timestamp: r.try_get(4)?,
                    data: r.try_get(5)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| db("decoding stored events", &e))
    }
}
