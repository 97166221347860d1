//! `actions_log`: the audit of every execution and the executor's idempotency record.
//!
//! The table (archive migrations) has a unique index on `action_id` for `status = 'success'`, so
//! an action can succeed at most once in the log. Before performing, the executor asks which of a
//! batch's actions already have a terminal row (`success`, or `skipped`: a refusal is final) and
//! skips those; after performing, it inserts one row per action with
//! `ON CONFLICT (action_id) WHERE status = 'success' DO NOTHING`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use ttlc_core::StageError;
use ttlc_core::config::Config;

use crate::error::ExecuteError;

/// One `actions_log` row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub action_id: String,
    pub rule_id: String,
    pub event_id: String,
    pub stream_id: String,
    pub session_id: String,
    pub action_type: &'static str,
    /// `success`, `failed` or `skipped`.
    pub status: &'static str,
    pub attempt: i32,
    pub rendered_template: String,
    pub error: Option<String>,
    pub duration_ms: i64,
}

const FINISHED_SQL: &str = "SELECT DISTINCT action_id FROM actions_log \
                            WHERE action_id = ANY($1) AND status IN ('success', 'skipped')";

const INSERT_SQL: &str = "INSERT INTO actions_log (action_id, rule_id, event_id, stream_id, session_id, \
     action_type, status, attempt, rendered_template, error, duration_ms) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::text[], $8::int4[], $9::text[], $10::text[], $11::int8[]) \
     ON CONFLICT (action_id) WHERE status = 'success' DO NOTHING";

/// The executor's connection to `actions_log`, re-opened after any failure.
pub struct Journal {
    pg: tokio_postgres::Config,
    app_role: String,
    timeout: Duration,
    client: Option<Arc<Client>>,
}

impl std::fmt::Debug for Journal {
    // tokio_postgres::Config redacts the password in its Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("pg", &self.pg)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

impl Journal {
    /// Does not connect: the first call does, and a database that is down is a retryable error.
    pub fn new(config: &Config) -> Result<Self, ExecuteError> {
        let mut pg: tokio_postgres::Config = config
            .postgres
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| ExecuteError::Config(e.to_string()))?;
        pg.connect_timeout(Duration::from_millis(config.postgres.connect_timeout_ms));
        Ok(Journal {
            pg,
            app_role: config.postgres.app_role.clone(),
            timeout: Duration::from_millis(config.postgres.write_timeout_ms),
            client: None,
        })
    }

    /// The ids among `ids` that already have a `success` or `skipped` row.
    pub async fn finished(&mut self, ids: &[String]) -> Result<HashSet<String>, StageError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let timeout = self.timeout;
        let client = self.client().await?;
        let rows = match tokio::time::timeout(timeout, client.query(FINISHED_SQL, &[&ids])).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => return Err(self.fail("reading actions_log", e)),
            Err(e) => return Err(self.fail("reading actions_log", e)),
        };
        rows.iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail("reading actions_log", e))
    }

    /// Writes `rows` in one statement (one transaction).
    pub async fn record(&mut self, rows: &[LogRow]) -> Result<(), StageError> {
        if rows.is_empty() {
            return Ok(());
        }
        let writer = self.writer().await?;
        writer.insert(rows).await.map_err(|e| {
            self.client = None;
            StageError::retryable("writing actions_log", e)
        })
    }

    /// A handle for writing rows from concurrent tasks (one per stream in a batch), so each
    /// action's row is written as soon as it was performed.
    pub async fn writer(&mut self) -> Result<LogWriter, StageError> {
        let client = self.client().await?.clone();
        Ok(LogWriter { client, timeout: self.timeout })
    }

    async fn client(&mut self) -> Result<&Arc<Client>, StageError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = Some(Arc::new(self.connect().await?));
        }
        self.client
            .as_ref()
            .ok_or_else(|| StageError::retryable("connecting to PostgreSQL", "no connection"))
    }

    async fn connect(&self) -> Result<Client, StageError> {
        let (client, connection) =
            match tokio::time::timeout(self.timeout, self.pg.connect(NoTls)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Err(StageError::retryable("connecting to PostgreSQL", e)),
                Err(e) => return Err(StageError::retryable("connecting to PostgreSQL", e)),
            };
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "The actions_log connection ended with an error.");
            }
        });
        if !self.app_role.is_empty() {
            let sql = format!("SET ROLE \"{}\"", self.app_role.replace('"', "\"\""));
            client.batch_execute(&sql).await.map_err(|e| StageError::retryable("SET ROLE", e))?;
        }
        Ok(client)
    }

    /// Every database failure is retryable here: the log is the executor's own bookkeeping, so a
    /// failure means the database (not the input) is at fault. The connection is dropped so the
    /// next attempt starts fresh.
    fn fail(
        &mut self,
        context: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> StageError {
        self.client = None;
        StageError::retryable(context.to_owned(), e)
    }
}

/// Writes `actions_log` rows on a shared connection (tokio-postgres pipelines concurrent
/// statements on one connection).
#[derive(Debug, Clone)]
pub struct LogWriter {
    client: Arc<Client>,
    timeout: Duration,
}

/// Why a row write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no answer from PostgreSQL within {0:?}")]
    Timeout(Duration),
}

impl LogWriter {
    /// Inserts `rows` in one statement; a success row that exists already is left alone.
    pub async fn insert(&self, rows: &[LogRow]) -> Result<(), WriteError> {
        let col = |f: fn(&LogRow) -> String| rows.iter().map(f).collect::<Vec<String>>();
        let (action, rule, event, stream, session) = (
            col(|r| r.action_id.clone()),
            col(|r| r.rule_id.clone()),
            col(|r| r.event_id.clone()),
            col(|r| r.stream_id.clone()),
            col(|r| r.session_id.clone()),
        );
        let kind = col(|r| r.action_type.to_owned());
        let status = col(|r| r.status.to_owned());
        let attempt: Vec<i32> = rows.iter().map(|r| r.attempt).collect();
        let text = col(|r| r.rendered_template.clone());
        let error: Vec<Option<String>> = rows.iter().map(|r| r.error.clone()).collect();
        let duration: Vec<i64> = rows.iter().map(|r| r.duration_ms).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
            &action, &rule, &event, &stream, &session, &kind, &status, &attempt, &text, &error,
            &duration,
        ];
        match tokio::time::timeout(self.timeout, self.client.execute(INSERT_SQL, &params)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(WriteError::Postgres(e)),
            Err(_) => Err(WriteError::Timeout(self.timeout)),
        }
    }
}
