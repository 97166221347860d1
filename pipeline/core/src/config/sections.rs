//! The config sections. Every field is documented and has a default, so `ttlc` runs against the
//! local stack with no file at all.

use serde::{Deserialize, Serialize};

/// Kafka-protocol broker (Redpanda in production, Tansu locally).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated. Env: `TTLC_BROKERS`.
    pub brokers: String,
    /// Prefix of every topic name, e.g. `ttlc.` gives `ttlc.raw`. Env: `TTLC_TOPIC_PREFIX`.
    pub topic_prefix: String,
    /// How long a consumer fetch waits for data. Low values matter on Tansu, whose long-poll caps
    /// a consumer at a few tens of thousands of records/s with librdkafka's default 500 ms.
    pub fetch_wait_max_ms: u32,
    /// Producer linger: small batches trade a little latency for much higher throughput.
    pub linger_ms: u32,
    /// Timeout for admin and metadata requests, in milliseconds.
    pub admin_timeout_ms: u64,
    /// Consumer group partition assignment strategy (`cooperative-sticky` or `range,roundrobin`).
    pub assignment_strategy: String,
    /// Consumer group session timeout: a member silent this long is evicted and its partitions
    /// are reassigned (how long a SIGKILLed stage's partitions wait for a successor).
    pub session_timeout_ms: u32,
    /// Consumer heartbeat interval. Keep it far below the session timeout: with librdkafka's
    /// defaults (3 s of 10 s), Tansu 0.6 hands the successor of a SIGKILLed member an empty
    /// assignment and never rebalances again (reproduced with confluent-kafka too); with 500 ms of
    /// 6 s the dead member is evicted and its partitions reassigned.
    pub heartbeat_interval_ms: u32,
    /// Records re-read before the committed offset when a partition is assigned, dropped again by
    /// the runner. Works around Tansu 0.6, which answers a fetch starting inside a record batch
    /// with the *next* batch (records would be lost on restart). 10,000 = librdkafka's largest
    /// batch. Set 0 on brokers that resume correctly (Redpanda, Kafka).
    pub resume_rewind_records: i64,
    /// Extra librdkafka properties passed through verbatim to every client (e.g. SASL settings for
    /// a managed Redpanda). Secrets among them belong in the environment: `TTLC__KAFKA__EXTRA__…`.
    pub extra: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "ttlc.".into(),
            fetch_wait_max_ms: 10,
            linger_ms: 5,
            admin_timeout_ms: 10_000,
            assignment_strategy: "cooperative-sticky".into(),
            session_timeout_ms: 6_000,
            heartbeat_interval_ms: 500,
            resume_rewind_records: 10_000,
            extra: Default::default(),
        }
    }
}

/// Topic declarations applied by `ttlc topics apply`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// 1 locally, 3 in production.
    pub replication_factor: i32,
    /// Partition count overrides by topic name (`raw`, `unified`, `actions`, `dlq`).
    pub partitions: std::collections::BTreeMap<String, i32>,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig { replication_factor: 1, partitions: Default::default() }
    }
}

/// How every consuming stage batches, retries and shuts down.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Most records handed to a stage at once; this also bounds memory per stage.
    pub batch_size: usize,
    /// Longest wait to fill a batch before handling what arrived, in milliseconds.
    pub batch_timeout_ms: u64,
    /// First retry delay for a retryable batch failure, in milliseconds.
    pub retry_initial_ms: u64,
    /// Retry delay cap, in milliseconds. Retries of a batch never give up on their own: an outage
    /// pauses the stage rather than dropping data. Shutdown interrupts them.
    pub retry_max_ms: u64,
    /// How long shutdown may take to flush and commit before the process exits anyway.
    pub shutdown_timeout_ms: u64,
    /// Consumer group id prefix: groups are `<prefix><stage>`. Empty in production (`normalizer`,
    /// `archive-pg`, …); tests set a unique prefix so runs never share offsets.
    pub group_prefix: String,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            batch_size: 2_000,
            batch_timeout_ms: 50,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            shutdown_timeout_ms: 10_000,
            group_prefix: String::new(),
        }
    }
}

/// PostgreSQL, the system of record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL of the application role. Env: `TTLC_DATABASE_URL`. The default matches
    /// `deploy/local/stack.sh` (a local development role, not a secret).
    pub url: String,
    /// Apply migrations when a stage that needs the database starts.
    pub migrate_on_start: bool,
    /// Role the stages switch to (`SET ROLE`) after connecting, so their writes run with the
    /// application privileges (no UPDATE/DELETE on `events`) even when `url` logs in as the schema
    /// owner that applies migrations. Empty: keep the login role (when `url` already logs in as a
    /// member of the application role).
    pub app_role: String,
    /// How long to wait for a connection to PostgreSQL, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest time one batch write (COPY, merge, commit) may take before the connection is
    /// dropped and the batch retried, in milliseconds. Guards against a half-open connection
    /// stalling a stage forever.
    pub write_timeout_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: "postgres://ttlc:ttlc@127.0.0.1:5432/ttlc".into(),
            migrate_on_start: true,
            app_role: "ttlc_app".into(),
            connect_timeout_ms: 5_000,
            write_timeout_ms: 60_000,
        }
    }
}

/// ClickHouse, the analytics store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickhouseConfig {
    /// HTTP URL with the database as its path. Env: `TTLC_CLICKHOUSE_URL`.
    pub url: String,
    /// Apply the ClickHouse DDL when a stage that needs it starts.
    pub migrate_on_start: bool,
    /// Longest time one batch insert may take before it is abandoned and retried, in
    /// milliseconds.
    pub write_timeout_ms: u64,
    /// Most events per ClickHouse insert (archive-ch's batch size, instead of
    /// `runner.batch_size`). Every insert writes a new part that background merges must fold
    /// away, so ClickHouse wants few large inserts: at 5,000-row batches the per-part cost
    /// dominated (≈0.15× the bulk load rate here), at 50,000 it is amortized. Also bounds
    /// archive-ch's memory (about 1 KB per event in flight).
    pub batch_size: usize,
    /// Longest wait to fill an insert, in milliseconds: the freshness of analytics queries when
    /// traffic is low. Live feeds read the broker, not ClickHouse, so a second is cheap.
    pub batch_timeout_ms: u64,
}

impl Default for ClickhouseConfig {
    fn default() -> Self {
        ClickhouseConfig {
            url: "http://127.0.0.1:8123/ttlc".into(),
            migrate_on_start: true,
            write_timeout_ms: 60_000,
            batch_size: 50_000,
            batch_timeout_ms: 1_000,
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address. Env: `TTLC_HTTP_ADDR`.
    pub addr: String,
    /// Development mode (default false): internal error details appear in responses. Never in
    /// production, where a 500 says only "internal error" and the details go to the log.
    pub dev_mode: bool,
    /// Sustained requests per second allowed from one client IP (default 50).
    pub rate_limit_ip_per_sec: f64,
    /// Burst above the sustained IP rate (default 200 requests).
    pub rate_limit_ip_burst: u32,
    /// Sustained requests per second allowed for one authenticated user (`sub`, default 20).
    pub rate_limit_user_per_sec: f64,
    /// Burst above the sustained user rate (default 100 requests).
    pub rate_limit_user_burst: u32,
    /// Live connections (SSE and WebSocket) one user may hold open at once (default 10).
    pub max_connections_per_user: usize,
    /// Largest request body accepted, in bytes (default 65536: rule writes are the largest bodies).
    pub max_body_bytes: usize,
    /// PEM public key verifying production tokens (RS256 or ES256, see `jwt_algorithm`). Empty
    /// (default): tokens are HS256, verified with the `TTLC_JWT_SECRET` environment secret.
    pub jwt_public_key_path: String,
    /// `RS256` (default) or `ES256`: the algorithm of `jwt_public_key_path`.
    pub jwt_algorithm: String,
    /// Origins allowed by CORS, e.g. `https://dashboard.example.com`. Empty (default): no CORS
    /// headers, browsers only call the API from its own origin.
    pub cors_origins: Vec<String>,
    /// Interval of SSE heartbeat comments and WebSocket pings, in milliseconds (default 15000).
    pub heartbeat_ms: u64,
    /// Events buffered per live feed for the slowest client (default 4096). A client that falls
    /// further behind is disconnected with a clear reason instead of slowing the others.
    pub live_buffer: usize,
    /// Timeout of one PostgreSQL or ClickHouse query, in milliseconds (default 10000).
    pub query_timeout_ms: u64,
    /// `Retry-After` seconds sent with 503 responses when a dependency is down (default 5).
    pub retry_after_secs: u64,
    /// Load balancers / reverse proxies (addresses or networks, e.g. `10.0.0.0/8`) whose
    /// `X-Forwarded-For` names the client for the per-IP rate limit. Empty (default): the header
    /// is ignored, since any client could forge it.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8080".into(),
            dev_mode: false,
            rate_limit_ip_per_sec: 50.0,
            rate_limit_ip_burst: 200,
            rate_limit_user_per_sec: 20.0,
            rate_limit_user_burst: 100,
            max_connections_per_user: 10,
            max_body_bytes: 64 * 1024,
            jwt_public_key_path: String::new(),
            jwt_algorithm: "RS256".into(),
            cors_origins: Vec::new(),
            heartbeat_ms: 15_000,
            live_buffer: 4_096,
            query_timeout_ms: 10_000,
            retry_after_secs: 5,
            trusted_proxies: Vec::new(),
        }
    }
}

/// TikTok ingest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Base URL of the Euler-compatible sign server. Env: `TTLC_SIGN_API_URL`. The API key is a
    /// secret: `TTLC_SIGN_API_KEY`, environment only.
    pub sign_api_url: String,
    /// Channels (`@uniqueId`) started at boot. With the control table on (`control_poll_ms` > 0)
    /// they are requested there at every start, like a `POST /channels`, so the API lists them
    /// and can stop them.
    pub channels: Vec<String>,
    /// Which sign endpoint to call: `fetch` (`GET /webcast/fetch?room_id=…`, default) or `connect`
    /// (the newer `GET /webcast/rooms/{room_id}/connect`).
    pub sign_endpoint: String,
    /// The Euler WebSocket relay used by `--provider euler` (default `wss://ws.eulerstream.com`);
    /// it takes the same API key as the sign server.
    pub euler_ws_url: String,
    /// TikTok's website, used to resolve `@uniqueId` to a room id (page data, then the live API).
    /// Default `https://www.tiktok.com`; tests point it at the mock TikTok server.
    pub tiktok_web_url: String,
    /// User-Agent sent to the sign server, TikTok's website and the push WebSocket; TikTok ties the
    /// signed URL and cookies to it, so all three must match.
    pub user_agent: String,
    /// Sign requests per second shared by every channel of the process (default 5), so starting
    /// 100 channels never stampedes the signer.
    pub sign_requests_per_sec: f64,
    /// Sign requests in flight at once across all channels (default 4).
    pub sign_max_concurrent: usize,
    /// First reconnect delay in milliseconds (default 1000); doubles per failed attempt.
    pub reconnect_initial_ms: u64,
    /// Reconnect delay cap in milliseconds (default 60000).
    pub reconnect_max_ms: u64,
    /// Random spread of each reconnect delay, as a fraction (default 0.2 = ±20%).
    pub reconnect_jitter: f64,
    /// Consecutive failed attempts before a channel gives up; 0 (default) retries forever.
    pub reconnect_max_attempts: u32,
    /// Heartbeat interval in milliseconds when the server does not negotiate one (default 10000).
    pub heartbeat_interval_ms: u64,
    /// A connection with no frame from the server for this long (ms) is considered dead and
    /// reconnected (default 30000). TikTok answers every heartbeat, so silence means trouble.
    pub idle_timeout_ms: u64,
    /// Timeout for each HTTP request and the WebSocket handshake, in milliseconds (default 10000).
    pub request_timeout_ms: u64,
    /// Quiet period after the last frame of a gift streak before ingest synthesizes its missing
    /// final frame, in milliseconds (default 10000).
    pub gift_streak_quiet_ms: u64,
    /// Envelopes buffered between channel tasks and the Kafka publisher (default 10000). When it is
    /// full, channels wait: a slow broker slows ingest instead of growing memory.
    pub publish_queue: usize,
    /// Records handed to the producer but not yet acknowledged (default 20000).
    pub publish_max_in_flight: usize,
    /// How often live ingest (direct, euler) reads the `ingest_channels` control table in
    /// PostgreSQL, in milliseconds (default 1000): it starts the channels requested there
    /// (`POST /channels`, from `ttlc api` or `ttlc all`), stops the ones stopped there, reports
    /// each channel's state and renews its leases. A start or stop also wakes it at once through
    /// `NOTIFY`, so this is the safety net and the status cadence. 0 turns the control table off:
    /// ingest runs only `channels`, exits when they have all ended, and `/channels` requests stay
    /// `pending`.
    pub control_poll_ms: u64,
    /// How long a channel's lease lasts without renewal, in milliseconds (default 15000; at least
    /// 3 × `control_poll_ms`). A killed ingest process's channels are taken over by another one
    /// (or its restart) after this long; shorter means faster takeover, but a process that
    /// cannot reach PostgreSQL for longer may find its channels taken over.
    pub control_lease_ms: u64,
    /// Most channels one ingest process runs from the control table (default 1000); the others
    /// are left for further `ttlc ingest` processes to claim.
    pub max_channels: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            sign_api_url: "https://tiktok.eulerstream.com".into(),
            channels: Vec::new(),
            sign_endpoint: "fetch".into(),
            euler_ws_url: "wss://ws.eulerstream.com".into(),
            tiktok_web_url: "https://www.tiktok.com".into(),
            user_agent: concat!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 ",
                "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            )
            .into(),
            sign_requests_per_sec: 5.0,
            sign_max_concurrent: 4,
            reconnect_initial_ms: 1_000,
            reconnect_max_ms: 60_000,
            reconnect_jitter: 0.2,
            reconnect_max_attempts: 0,
            heartbeat_interval_ms: 10_000,
            idle_timeout_ms: 30_000,
            request_timeout_ms: 10_000,
            gift_streak_quiet_ms: 10_000,
            publish_queue: 10_000,
            publish_max_in_flight: 20_000,
            control_poll_ms: 1_000,
            control_lease_ms: 15_000,
            max_channels: 1_000,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (structured, for production) or `pretty` (for a terminal).
    pub format: String,
    /// A tracing filter such as `info` or `ttlc_core=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "json".into(), level: "info".into() }
    }
}

/// The rules stage (`ttlc rules`) and rule validation on write (the API uses the same settings).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Full reload of the rule set at this interval, in milliseconds (default 30000), on top of
    /// the immediate reload that every `NOTIFY ttlc_rules` triggers: a safety net for a lost
    /// notification (e.g. a connection pooler in transaction mode in front of PostgreSQL).
    pub reload_interval_ms: u64,
    /// Most (rule, user) cooldown entries kept in memory (default 100000). Expired entries are
    /// purged first when the map is full; only then are the soonest-expiring entries dropped.
    pub max_cooldown_entries: usize,
    /// Most nesting levels of a rule condition (default 12).
    pub max_condition_depth: usize,
    /// Most operator and literal nodes in a rule condition (default 200).
    pub max_condition_nodes: usize,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            reload_interval_ms: 30_000,
            max_cooldown_entries: 100_000,
            max_condition_depth: 12,
            max_condition_nodes: 200,
        }
    }
}

/// The action executor (`ttlc execute`). The webhook HMAC key is a secret:
/// `TTLC_WEBHOOK_SECRET`, environment only. The chat API key is `TTLC_SIGN_API_KEY` (Euler's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecuteConfig {
    /// Webhook hosts allowed as targets: exact names (`hooks.example.com`) or suffix patterns
    /// (`*.example.com`). Empty (default) allows any host whose addresses pass the public-address
    /// policy; loopback, private, link-local, multicast and unspecified targets are refused always.
    pub webhook_allowed_domains: Vec<String>,
    /// Development only: allow `http://` webhooks to the literal address 127.0.0.1 (default false).
    pub webhook_allow_http_loopback: bool,
    /// Webhook connect timeout in milliseconds (default 3000).
    pub webhook_connect_timeout_ms: u64,
    /// Whole-request webhook timeout in milliseconds (default 10000).
    pub webhook_timeout_ms: u64,
    /// Most response-body bytes read from a webhook target (default 65536); the rest is dropped.
    pub webhook_max_response_bytes: usize,
    /// First retry delay of a failed action, in milliseconds (default 500); doubles per attempt,
    /// with jitter.
    pub retry_initial_ms: u64,
    /// Retry delay cap in milliseconds (default 30000).
    pub retry_max_ms: u64,
    /// Attempts per action, the first included, before it goes to the DLQ (default 6).
    pub retry_max_attempts: u32,
    /// Longest time one batch may spend retrying, in milliseconds (default 60000): after it,
    /// failing actions get no further retries and go to the DLQ, so one broken target cannot hold
    /// its partitions (and the batch's other partitions) for long.
    pub batch_retry_budget_ms: u64,
    /// Actions of different streams performed at once within a batch (default 16). Actions of one
    /// stream run in order.
    pub concurrency: usize,
    /// Base URL of the Euler chat/moderation API used by `announce` and `moderate`.
    pub chat_api_url: String,
    /// Overlay messages buffered for in-process subscribers (the API in `ttlc all`), default 1024.
    /// A subscriber that falls further behind skips the oldest messages.
    pub overlay_buffer: usize,
}

impl Default for ExecuteConfig {
    fn default() -> Self {
        ExecuteConfig {
            webhook_allowed_domains: Vec::new(),
            webhook_allow_http_loopback: false,
            webhook_connect_timeout_ms: 3_000,
            webhook_timeout_ms: 10_000,
            webhook_max_response_bytes: 64 * 1024,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            retry_max_attempts: 6,
            batch_retry_budget_ms: 60_000,
            concurrency: 16,
            chat_api_url: "https://tiktok.eulerstream.com".into(),
            overlay_buffer: 1_024,
        }
    }
}

/// Retention, pseudonymization and GDPR erasure (`ttlc prune`, `ttlc gdpr-erase`; SPEC §8).
/// Ages are in days and count from the event time (events), the last activity (sessions, streams,
/// users) or the execution time (actions_log); 0 keeps that data forever. The pseudonymization
/// key is a secret: `TTLC_PSEUDONYM_SECRET` (≥ 32 bytes), environment only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Events older than this leave `events` for `events_archive` (default 90): the API, history
    /// and replay no longer see them, operators and GDPR erasure still do.
    pub events_archive_days: u32,
    /// Events older than this are hard-deleted from `events_archive`, `events` and ClickHouse
    /// (default 120, i.e. 30 days after archiving). Must not be below `events_archive_days`.
    pub events_delete_days: u32,
    /// `actions_log` rows older than this are deleted (default 90).
    pub actions_log_days: u32,
    /// Sessions whose last event and streams whose last activity are older than this are deleted
    /// (default 365).
    pub sessions_days: u32,
    /// Users not seen for this long are pseudonymized (default 365): ids replaced by
    /// HMAC-SHA256 values under `TTLC_PSEUDONYM_SECRET`, name and avatar removed.
    pub users_inactive_days: u32,
    /// Most rows one delete, move or pseudonymization statement touches (default 5000). Every
    /// batch is its own short transaction, so pruning a large table never holds locks or
    /// bloats WAL in one giant transaction, and an interrupted prune keeps what it did.
    pub batch_size: u32,
    /// Role maintenance runs as (`SET ROLE`, default `ttlc_maint`): the only role allowed to
    /// change or delete events. Empty: keep the login role of `postgres.url`.
    pub maint_role: String,
    /// How long to wait for ClickHouse to finish a delete mutation, in milliseconds (default
    /// 300000). ClickHouse applies `ALTER TABLE … DELETE` in the background; after this the
    /// command reports it as still running (re-running is safe).
    pub clickhouse_wait_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            events_archive_days: 90,
            events_delete_days: 120,
            actions_log_days: 90,
            sessions_days: 365,
            users_inactive_days: 365,
            batch_size: 5_000,
            maint_role: "ttlc_maint".into(),
            clickhouse_wait_ms: 300_000,
        }
    }
}
