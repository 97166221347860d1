//! Database handles: one shared PostgreSQL connection that reconnects on demand, and a ClickHouse
//! HTTP client. Both time out and map outages to 503 with `Retry-After`.
//!
//! One tokio-postgres client pipelines concurrent queries over one connection, which is enough for
//! an API whose heavy reads go to ClickHouse; a dead connection is replaced by the next request
//! instead of failing every request until restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};
use ttlc_core::config::Config;

use crate::error::ApiError;

/// PostgreSQL for history, users, notes and rules.
pub(crate) struct Pg {
    config: Option<tokio_postgres::Config>,
    app_role: String,
    timeout: Duration,
    retry_after: u64,
    client: Mutex<Option<Arc<Client>>>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio_postgres::Config redacts the password.
        f.debug_struct("Pg").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Pg {
    pub(crate) fn new(config: &Config) -> Self {
        let parsed = match config.postgres.url.parse::<tokio_postgres::Config>() {
            Ok(mut c) => {
                c.connect_timeout(Duration::from_millis(config.postgres.connect_timeout_ms));
                Some(c)
            }
            Err(error) => {
                tracing::error!(%error, "The PostgreSQL URL is invalid; history endpoints will answer 503.");
                None
            }
        };
        Pg {
            config: parsed,
            app_role: config.postgres.app_role.clone(),
            timeout: Duration::from_millis(config.http.query_timeout_ms),
            retry_after: config.http.retry_after_secs,
            client: Mutex::new(None),
        }
    }

    fn unavailable(&self) -> ApiError {
        ApiError::Unavailable { what: "PostgreSQL", retry_after: self.retry_after }
    }

    async fn client(&self) -> Result<Arc<Client>, ApiError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        let config = self.config.as_ref().ok_or_else(|| self.unavailable())?;
        let connect = async {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "The PostgreSQL connection ended with an error.");
                }
            });
            if !self.app_role.is_empty() {
                // Same privileges as the stages: reads, notes and rules; never UPDATE/DELETE events.
                let role = self.app_role.replace('"', "\"\"");
                client.batch_execute(&format!("SET ROLE \"{role}\"")).await?;
            }
            Ok::<_, tokio_postgres::Error>(client)
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(client)) => {
                let client = Arc::new(client);
                *slot = Some(client.clone());
                Ok(client)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "Cannot connect to PostgreSQL.");
                Err(self.unavailable())
            }
            Err(_) => {
                tracing::warn!("Connecting to PostgreSQL timed out.");
                Err(self.unavailable())
            }
        }
    }

    fn map_error(&self, error: tokio_postgres::Error) -> ApiError {
        match ApiError::from(error) {
            ApiError::Unavailable { what, .. } => {
                ApiError::Unavailable { what, retry_after: self.retry_after }
            }
            other => other,
        }
    }

    /// Runs a parameterized query.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, ApiError> {
        let client = self.client().await?;
        match tokio::time::timeout(self.timeout, client.query(sql, params)).await {
            Ok(result) => result.map_err(|e| self.map_error(e)),
            Err(_) => Err(self.unavailable()),
        }
    }

    /// Runs a parameterized query expected to return at most one row.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, ApiError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// `SELECT 1`, for /health.
    pub(crate) async fn ping(&self) -> Result<(), ApiError> {
        self.query("SELECT 1", &[]).await.map(|_| ())
    }
}

/// ClickHouse for analytics.
pub(crate) struct Ch {
    client: Option<clickhouse::Client>,
    timeout: Duration,
    retry_after: u64,
}

impl std::fmt::Debug for Ch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ch").field("configured", &self.client.is_some()).finish_non_exhaustive()
    }
}

impl Ch {
    pub(crate) fn new(config: &Config) -> Self {
        let client = match ttlc_archive::ClickhouseTarget::parse(&config.clickhouse.url) {
            Ok(target) => Some(target.client()),
            Err(error) => {
                tracing::error!(%error, "The ClickHouse URL is invalid; analytics will answer 503.");
                None
            }
        };
        Ch {
            client,
            timeout: Duration::from_millis(config.http.query_timeout_ms),
            retry_after: config.http.retry_after_secs,
        }
    }

    fn unavailable(&self) -> ApiError {
        ApiError::Unavailable { what: "ClickHouse", retry_after: self.retry_after }
    }

    /// A query builder; bind every user-supplied value with `.bind()`.
    pub(crate) fn query(&self, sql: &str) -> Result<clickhouse::query::Query, ApiError> {
        self.client.as_ref().map(|c| c.query(sql)).ok_or_else(|| self.unavailable())
    }

    /// Fetches all rows of a query, with the configured timeout.
    pub(crate) async fn fetch_all<T>(
        &self,
        query: clickhouse::query::Query,
    ) -> Result<Vec<T>, ApiError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        match tokio::time::timeout(self.timeout, query.fetch_all::<T>()).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(error)) => Err(match ApiError::from(error) {
                ApiError::Unavailable { what, .. } => {
                    ApiError::Unavailable { what, retry_after: self.retry_after }
                }
                other => other,
            }),
            Err(_) => Err(self.unavailable()),
        }
    }

    /// `SELECT 1`, for /health.
    pub(crate) async fn ping(&self) -> Result<(), ApiError> {
        let query = self.query("SELECT toUInt8(1)")?;
        self.fetch_all::<u8>(query).await.map(|_| ())
    }
}
