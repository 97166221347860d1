//! Rules in PostgreSQL (`rules` table, created by the archive migrations): the CRUD API the HTTP
//! handlers call, and the loading the rules stage's reloader uses.
//!
//! Writes validate first ([`crate::validate_with`]) and store nothing invalid, so the rules stage
//! can compile every stored rule. Errors say what the caller should answer: [`StoreError::NotFound`]
//! (404), [`StoreError::Invalid`] (400/422 with the problem list), [`StoreError::Unavailable`]
//! (503, retry later), [`StoreError::Database`] (500).
//!
//! Column mapping: `cooldown` (seconds) is stored as `cooldown_ms`; `meta` holds `skipReplay`,
//! `countStreakFrames` and `rateLimit` (the table has no columns for the last two; JSONB keeps
//! them without a migration). Every write fires the table's `NOTIFY ttlc_rules` trigger, which is
//! what the rules stage listens to.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, NoTls, Row};
use ttlc_core::config::Config;
use ttlc_schemas::EventType;

use crate::model::{Rule, RuleAction, RuleInput, RuleMeta};
use crate::validate::{RuleProblem, ValidationOptions, validate_with};

/// The channel the `rules` table's trigger notifies on every change.
pub const NOTIFY_CHANNEL: &str = "ttlc_rules";

const COLUMNS: &str = "id, stream_id, name, description, event_type, condition, action, enabled, \
                       priority, meta, cooldown_ms, created_by, created_at, updated_at";

/// What went wrong with a store call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rule {id} does not exist")]
    NotFound { id: String },
    #[error("invalid rule: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RuleProblem>),
    /// PostgreSQL cannot be reached or timed out: retry later (HTTP 503).
    #[error("the rule database is unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL answered with an error retrying will not fix, or a stored row is unreadable.
    #[error("rule database error: {0}")]
    Database(String),
}

impl StoreError {
    fn from_pg(e: tokio_postgres::Error) -> Self {
        // No SQLSTATE means the error is the connection's (closed, I/O). Class 08 is "connection
        // exception", 57P0x an administrator shutdown, 53 insufficient resources: all transient.
        match e.code().map(|c| c.code()) {
            None => StoreError::Unavailable(e.to_string()),
            Some(c) if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
                StoreError::Unavailable(e.to_string())
            }
            Some(_) => StoreError::Database(e.to_string()),
        }
    }

    /// True when retrying later can succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// CRUD over the `rules` table. Cheap to share (`Arc<RuleStore>`); it holds one lazily opened
/// connection, re-opened after a failure, so a database outage never needs a restart.
pub struct RuleStore {
    pg: tokio_postgres::Config,
    app_role: String,
    timeout: Duration,
    options: ValidationOptions,
    conn: Mutex<Option<Arc<Client>>>,
}

impl std::fmt::Debug for RuleStore {
    // tokio_postgres::Config redacts the password in its Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleStore")
            .field("pg", &self.pg)
            .field("app_role", &self.app_role)
            .finish_non_exhaustive()
    }
}

impl RuleStore {
    /// A store for `config.postgres`, validating with the options derived from `config`. Does not
    /// connect yet: the first call does.
    pub fn new(config: &Config) -> Result<Self, StoreError> {
        Self::with_options(config, ValidationOptions::from_config(config))
    }

    /// Like [`RuleStore::new`] with explicit validation options.
    pub fn with_options(config: &Config, options: ValidationOptions) -> Result<Self, StoreError> {
        let mut pg: tokio_postgres::Config = config
            .postgres
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Database(e.to_string()))?;
        pg.connect_timeout(Duration::from_millis(config.postgres.connect_timeout_ms));
        Ok(RuleStore {
            pg,
            app_role: config.postgres.app_role.clone(),
            timeout: Duration::from_millis(config.postgres.connect_timeout_ms.max(1_000) * 2),
            options,
            conn: Mutex::new(None),
        })
    }

    /// The validation options writes are checked with.
    pub fn options(&self) -> &ValidationOptions {
        &self.options
    }

    /// Rules, ordered by priority (higher first) then id. `Some(stream)`: that stream's rules and
    /// the global ones; `None`: every rule.
    pub async fn list(&self, stream_id: Option<&str>) -> Result<Vec<Rule>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM rules WHERE $1::text IS NULL OR stream_id IS NULL OR stream_id = $1 \
             ORDER BY priority DESC, id"
        );
        let rows = self.run(|c| async move { c.query(&sql, &[&stream_id]).await }).await?;
        rows.iter().map(row_to_rule).collect()
    }

    /// Every enabled rule (what the rules stage evaluates).
    pub async fn load_enabled(&self) -> Result<Vec<Rule>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM rules WHERE enabled ORDER BY priority DESC, id");
        let rows = self.run(|c| async move { c.query(&sql, &[]).await }).await?;
        rows.iter().map(row_to_rule).collect()
    }

    pub async fn get(&self, id: &str) -> Result<Rule, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM rules WHERE id = $1");
        let row = self.run(|c| async move { c.query_opt(&sql, &[&id]).await }).await?;
        row.as_ref()
            .map(row_to_rule)
            .unwrap_or_else(|| Err(StoreError::NotFound { id: id.to_owned() }))
    }

    /// Validates and inserts a rule; the store assigns its id and timestamps.
    pub async fn create(&self, input: RuleInput) -> Result<Rule, StoreError> {
        validate_with(&input, &self.options).map_err(StoreError::Invalid)?;
        let sql = format!(
            "INSERT INTO rules (stream_id, name, description, event_type, condition, action, enabled, \
             priority, meta, cooldown_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
        );
        let w = Writable::of(&input);
        let row = self
            .run(|c| async move {
                c.query_one(
                    &sql,
                    &[
                        &w.input.stream_id,
                        &w.input.name,
                        &w.input.description,
                        &w.event_type,
                        &w.input.condition,
                        &Json(&w.input.action),
                        &w.input.enabled,
                        &w.input.priority,
                        &Json(&w.input.meta),
                        &w.cooldown_ms,
                        &w.input.created_by,
                    ],
                )
                .await
            })
            .await?;
        row_to_rule(&row)
    }

    /// Validates and replaces rule `id` (everything but its id, `createdBy` and `createdAt`).
    pub async fn update(&self, id: &str, input: RuleInput) -> Result<Rule, StoreError> {
        validate_with(&input, &self.options).map_err(StoreError::Invalid)?;
        let sql = format!(
            "UPDATE rules SET stream_id = $2, name = $3, description = $4, event_type = $5, \
             condition = $6, action = $7, enabled = $8, priority = $9, meta = $10, cooldown_ms = $11, \
             updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        );
        let w = Writable::of(&input);
        let row = self
            .run(|c| async move {
                c.query_opt(
                    &sql,
                    &[
                        &id,
                        &w.input.stream_id,
                        &w.input.name,
                        &w.input.description,
                        &w.event_type,
                        &w.input.condition,
                        &Json(&w.input.action),
                        &w.input.enabled,
                        &w.input.priority,
                        &Json(&w.input.meta),
                        &w.cooldown_ms,
                    ],
                )
                .await
            })
            .await?;
        row.as_ref()
            .map(row_to_rule)
            .unwrap_or_else(|| Err(StoreError::NotFound { id: id.to_owned() }))
    }

    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let n = self
            .run(|c| async move { c.execute("DELETE FROM rules WHERE id = $1", &[&id]).await })
            .await?;
        if n == 0 { Err(StoreError::NotFound { id: id.to_owned() }) } else { Ok(()) }
    }

    /// Runs one statement on the shared connection with a timeout; a failed connection is
    /// dropped so the next call opens a fresh one.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = self.client().await?;
        match tokio::time::timeout(self.timeout, f(client.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let err = StoreError::from_pg(e);
                if err.is_unavailable() {
                    self.forget(&client).await;
                }
                Err(err)
            }
            Err(_) => {
                self.forget(&client).await;
                Err(StoreError::Unavailable(format!("no answer within {:?}", self.timeout)))
            }
        }
    }

    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let client = Arc::new(self.connect().await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn forget(&self, failed: &Arc<Client>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }

    /// Opens a connection running as the application role. The connection task is spawned; it
    /// ends when the client is dropped.
    pub(crate) async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.connect_raw().await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "A rule store connection ended with an error.");
            }
        });
        self.set_role(&client).await?;
        Ok(client)
    }

    /// Opens a connection and leaves driving it to the caller (the reloader needs its
    /// notifications).
    pub(crate) async fn connect_raw(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        StoreError,
    > {
        match tokio::time::timeout(self.timeout, self.pg.connect(NoTls)).await {
            Ok(Ok(pair)) => Ok(pair),
            Ok(Err(e)) => Err(StoreError::from_pg(e)),
            Err(_) => Err(StoreError::Unavailable("connecting to PostgreSQL timed out".into())),
        }
    }

    pub(crate) async fn set_role(&self, client: &Client) -> Result<(), StoreError> {
        if self.app_role.is_empty() {
            return Ok(());
        }
        let sql = format!("SET ROLE \"{}\"", self.app_role.replace('"', "\"\""));
        client.batch_execute(&sql).await.map_err(StoreError::from_pg)
    }
}

/// The column values of a rule about to be written.
struct Writable<'a> {
    input: &'a RuleInput,
    event_type: &'static str,
    cooldown_ms: i64,
}

impl<'a> Writable<'a> {
    fn of(input: &'a RuleInput) -> Self {
        Writable {
            input,
            event_type: input.event_type.as_str(),
            // Validation caps cooldown at 7 days, far inside i64 milliseconds.
            cooldown_ms: i64::try_from(input.cooldown.saturating_mul(1_000)).unwrap_or(i64::MAX),
        }
    }
}

fn row_to_rule(row: &Row) -> Result<Rule, StoreError> {
    let id: String = row.try_get("id").map_err(corrupt)?;
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Database(format!("rule {id}: {what}: {e}"))
    };
    let event_type: String = row.try_get("event_type").map_err(corrupt)?;
    let event_type = EventType::parse(&event_type)
        .ok_or_else(|| bad("event_type", &format!("unknown type {event_type:?}")))?;
    let action: Value = row.try_get("action").map_err(corrupt)?;
    let action: RuleAction = serde_json::from_value(action).map_err(|e| bad("action", &e))?;
    let meta: Value = row.try_get("meta").map_err(corrupt)?;
    let meta: RuleMeta = serde_json::from_value(meta).map_err(|e| bad("meta", &e))?;
    let cooldown_ms: i64 = row.try_get("cooldown_ms").map_err(corrupt)?;
    Ok(Rule {
        spec: RuleInput {
            stream_id: row.try_get("stream_id").map_err(corrupt)?,
            name: row.try_get("name").map_err(corrupt)?,
            description: row.try_get("description").map_err(corrupt)?,
            event_type,
            condition: row.try_get("condition").map_err(corrupt)?,
            action,
            enabled: row.try_get("enabled").map_err(corrupt)?,
            priority: row.try_get("priority").map_err(corrupt)?,
            meta,
            // Rounded up: a cooldown written in milliseconds by hand never shrinks to zero.
            cooldown: u64::try_from(cooldown_ms).unwrap_or(0).div_ceil(1_000),
            created_by: row.try_get("created_by").map_err(corrupt)?,
        },
        created_at: row.try_get("created_at").map_err(corrupt)?,
        updated_at: row.try_get("updated_at").map_err(corrupt)?,
        id,
    })
}

fn corrupt(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(format!("unexpected rules row: {e}"))
}
