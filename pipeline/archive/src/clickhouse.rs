//! The `archive-ch` stage: UnifiedEvents into ClickHouse for analytics.
//!
//! One RowBinary INSERT per batch through the `clickhouse` crate. Re-delivery after a crash or a
//! retried batch inserts the same rows again; the ReplacingMergeTree collapses them (same sorting
//! key) and analytics read with `FINAL`, so nothing is counted twice. Validation of the row layout
//! against the server is off because the crate's check needs a newer server than the local 18.16;
//! the tests check the layout instead.

use std::time::Duration;

use ::clickhouse::Client;
use ::clickhouse::error::Error as ChError;
use ::clickhouse::insert::Insert;
use chrono::Utc;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::{debug, warn};
use ttlc_core::config::Config;
use ttlc_core::{Batching, Disposition, InputRecord, Stage, StageError};
use ttlc_topics::Topic;

use crate::columns::ChEventRow;
use crate::decode::{Decoder, finish};
use crate::error::ArchiveError;
use crate::migrate::migrate_clickhouse;

/// Where ClickHouse is: `http://[user[:password]@]host:port/database`.
#[derive(Clone)]
pub struct ClickhouseTarget {
    /// `scheme://host:port` without credentials or path.
    pub base_url: String,
    pub database: String,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for ClickhouseTarget {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickhouseTarget")
            .field("base_url", &self.base_url)
            .field("database", &self.database)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ClickhouseTarget {
    /// Parses a ClickHouse URL whose path names the database.
    pub fn parse(url: &str) -> Result<Self, ArchiveError> {
        let invalid = |reason: String| ArchiveError::InvalidUrl { what: "ClickHouse", reason };
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let database = parsed.path().trim_matches('/').to_owned();
        if database.is_empty() || database.contains(['/', '`']) {
            return Err(invalid(format!(
                "the path must name one database, got {:?}",
                parsed.path()
            )));
        }
        let host = parsed.host_str().ok_or_else(|| invalid("no host".into()))?;
        let port = parsed.port_or_known_default().unwrap_or(8123);
        let user = Some(parsed.username()).filter(|u| !u.is_empty()).map(percent_decode);
        Ok(ClickhouseTarget {
            base_url: format!("{}://{host}:{port}", parsed.scheme()),
            database,
            user,
            password: parsed.password().map(percent_decode),
        })
    }

    /// A client without a default database (for `CREATE DATABASE`).
    pub fn server_client(&self) -> Client {
        // The request body type is the crate's private one, so the hyper client is built in place
        // and its type inferred from `with_http_client`.
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(2))
            .build(connector());
        let mut client =
            Client::with_http_client(http).with_url(&self.base_url).with_validation(false);
        if let Some(user) = &self.user {
            client = client.with_user(user);
        }
        if let Some(password) = &self.password {
            client = client.with_password(password);
        }
        client
    }

    /// A client whose queries run in the target database.
    pub fn client(&self) -> Client {
        self.server_client().with_database(&self.database)
    }
}

/// The connector under the `clickhouse` crate's HTTP client. Its default leaves Nagle's algorithm
/// on, and the small final chunk of a streamed INSERT body then waits for the server's delayed ACK
/// (40 ms on Linux) on every insert, which at 5,000-row batches was most of the time. Otherwise the
/// crate's defaults: keepalive 60 s, idle connections closed after 2 s (before ClickHouse's 3 s).
fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    connector
}

/// URL userinfo is percent-encoded; ClickHouse wants the plain text.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `archive-ch` stage.
pub struct ChArchiver {
    client: Client,
    database: String,
    write_timeout: Duration,
    batching: Batching,
}

impl std::fmt::Debug for ChArchiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChArchiver")
            .field("database", &self.database)
            .field("write_timeout", &self.write_timeout)
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

impl ChArchiver {
    /// Prepares the stage from `config.clickhouse`, applying migrations first when
    /// `migrate_on_start` is set. ClickHouse speaks HTTP, so there is no connection to keep:
    /// an outage surfaces as a retryable error from `handle`.
    pub async fn connect(config: &Config) -> Result<Self, ArchiveError> {
        let settings = &config.clickhouse;
        if settings.migrate_on_start {
            migrate_clickhouse(&settings.url).await?;
        }
        let target = ClickhouseTarget::parse(&settings.url)?;
        Ok(ChArchiver {
            client: target.client(),
            database: target.database,
            write_timeout: Duration::from_millis(settings.write_timeout_ms),
            batching: Batching {
                max_records: settings.batch_size,
                max_wait: Duration::from_millis(settings.batch_timeout_ms),
            },
        })
    }

    async fn start_insert(&self) -> Result<Insert<ChEventRow<'static>>, ChError> {
        Ok(self
            .client
            .insert::<ChEventRow<'static>>("events")
            .await?
            .with_timeouts(Some(self.write_timeout), Some(self.write_timeout)))
    }
}

impl Stage for ChArchiver {
    fn name(&self) -> &'static str {
        "archive-ch"
    }

    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Unified]
    }

    fn batching(&self) -> Option<Batching> {
        Some(self.batching)
    }

    /// One RowBinary INSERT per batch. The body streams to the server as rows are written, so
    /// records are decoded a slice at a time: ClickHouse parses the first rows while later ones
    /// are still being decoded.
    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        let now = Utc::now();
        let mut decoder = Decoder::new(batch.len());
        let mut insert = None;
        let mut rows = 0usize;
        for (n, slice) in batch.chunks(DECODE_SLICE).enumerate() {
            let events = decoder.decode(n * DECODE_SLICE, slice);
            if events.is_empty() {
                continue;
            }
            let insert = match &mut insert {
                Some(insert) => insert,
                None => insert.insert(self.start_insert().await.map_err(classify)?),
            };
            for (_, event) in &events {
                insert.write(&ChEventRow::new(event, now)).await.map_err(classify)?;
            }
            rows += events.len();
        }
        if let Some(insert) = insert {
            insert.end().await.map_err(classify)?;
            debug!(rows, "Inserted a batch into ClickHouse.");
        }
        Ok(finish(decoder.into_dispositions()))
    }
}

/// Records decoded before their rows are written: large enough to amortize the loop, small enough
/// that the first chunk of the INSERT body leaves early (the client sends ~256 KiB chunks).
const DECODE_SLICE: usize = 2_048;

/// The retry predicate of this sink: transport failures, timeouts and server-side overload are
/// worth retrying; anything else (unknown table, bad credentials, a row layout the server does not
/// accept) fails the same way every time and would be the same for every row, so it stops the
/// stage instead of dead-lettering the whole stream.
fn classify(error: ChError) -> StageError {
    let retryable = match &error {
        ChError::Network(_) | ChError::TimedOut => true,
        ChError::BadResponse(body) => match exception_code(body) {
            Some(code) => RETRYABLE_CODES.contains(&code),
            // No ClickHouse exception in the body: a proxy or the server's HTTP layer failed.
            None => true,
        },
        _ => false,
    };
    if retryable {
        warn!(error = %error, "ClickHouse insert failed; the batch will be retried.");
        StageError::retryable("inserting into ClickHouse", error)
    } else {
        StageError::fatal("inserting into ClickHouse", error)
    }
}

/// ClickHouse error codes that describe a transient condition: timeouts (159, 209), network (210),
/// too many simultaneous queries (202), memory limit (241), too many parts (252), table in
/// read-only mode (242), Keeper or replica trouble (999, 225, 319), server shutting down (394).
const RETRYABLE_CODES: &[u32] = &[159, 202, 209, 210, 225, 241, 242, 252, 319, 394, 999];

/// The `Code: N` of a ClickHouse exception text.
fn exception_code(body: &str) -> Option<u32> {
    let rest = &body[body.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_database_and_credentials() {
        let t = ClickhouseTarget::parse("http://u:p%40ss@127.0.0.1:8123/ttlc_x").expect("valid");
        assert_eq!(t.base_url, "http://127.0.0.1:8123");
        assert_eq!(t.database, "ttlc_x");
        assert_eq!(t.user.as_deref(), Some("u"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert!(!format!("{t:?}").contains("ss"));
        assert!(ClickhouseTarget::parse("http://127.0.0.1:8123/").is_err());
        assert!(ClickhouseTarget::parse("http://127.0.0.1:8123/a/b").is_err());
    }

    #[test]
    fn server_errors_are_classified_by_code() {
        let overload = ChError::BadResponse(
            "Code: 252, e.displayText() = DB::Exception: Too many parts".into(),
        );
        assert!(classify(overload).is_retryable());
        let missing = ChError::BadResponse(
            "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist".into(),
        );
        assert!(!classify(missing).is_retryable());
        assert!(classify(ChError::BadResponse("502 Bad Gateway".into())).is_retryable());
        assert!(classify(ChError::TimedOut).is_retryable());
    }
}
