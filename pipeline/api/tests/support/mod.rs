//! Shared helpers for the API integration tests: a real server on 127.0.0.1 (ephemeral port)
//! backed by the real broker (unique topic prefix), a fresh PostgreSQL database and a fresh
//! ClickHouse database, seeded through the archive crate's own archivers; event builders; an SSE
//! reader; in-test implementations of the control traits (the edge, not a mock of our code).
// Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use ttlc_api::{ApiDeps, ChannelControl, Role};
use ttlc_core::config::Config;
use ttlc_core::{InputRecord, Stage};
use ttlc_schemas::event::{
    ChatPayload, ConnectedPayload, GiftPayload, JoinPayload, LikePayload, Payload, SocialPayload,
};
use ttlc_schemas::{Source, UnifiedEvent, User};
use ttlc_topics::Topic;

mod control;
mod sse;

pub use control::{TestChannels, TestReplays};
pub use sse::{SseEvent, SseReader};

pub const SECRET: &str = "test-secret-for-the-api-integration-tests";
pub const STREAM_A: &str = "7001";
pub const STREAM_B: &str = "7002";
pub const SESSION_A: &str = "5a1e0000-0000-4000-8000-00000000000a";
pub const SESSION_B: &str = "5a1e0000-0000-4000-8000-00000000000b";
/// A user who appears in both streams.
pub const USER_BOTH: &str = "9000001";

/// Prefix of every database these tests create.
const DB_PREFIX: &str = "ttlc_t_api_";

/// Drops this suite's databases older than two hours (left by runs that did not finish, and by
/// the shared server of each test binary, which lives until the process exits).
async fn sweep_stale() {
    let cutoff = Utc::now().timestamp() - 2 * 3600;
    let stale = |name: &str| {
        name.strip_prefix(DB_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<i64>().ok())
            .is_some_and(|secs| secs < cutoff)
    };
    if let Ok((client, connection)) = tokio_postgres::connect(&pg_admin_url(), NoTls).await {
        tokio::spawn(connection);
        let rows = client
            .query("SELECT datname FROM pg_database WHERE datname LIKE 'ttlc\\_t\\_api\\_%'", &[])
            .await
            .unwrap_or_default();
        for name in rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).filter(|n| stale(n))
        {
            let _ =
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
    let ch = clickhouse::Client::default().with_url(ch_server_url()).with_validation(false);
    let names: Vec<String> = ch
        .query("SELECT name FROM system.databases WHERE startsWith(name, ?)")
        .bind(DB_PREFIX)
        .fetch_all::<String>()
        .await
        .unwrap_or_default();
    for name in names.into_iter().filter(|n| stale(n)) {
        let _ = ch.query(&format!("DROP DATABASE IF EXISTS {name}")).execute().await;
    }
}

/// Drops the databases of `config` (tests that start their own server call it at the end).
pub async fn drop_databases(config: &Config) {
    let name = config.postgres.url.rsplit('/').next().unwrap_or_default().to_owned();
    assert!(name.starts_with(DB_PREFIX), "only this suite's databases are dropped");
    let (client, connection) =
        tokio_postgres::connect(&pg_admin_url(), NoTls).await.expect("PostgreSQL admin");
    tokio::spawn(connection);
    // Cleanup only: an autovacuum worker (a superuser process) makes a forced drop fail, and a
    // leftover database is swept by a later run.
    if let Err(error) =
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
    {
        eprintln!("note: test database {name} left behind: {error}");
    }
    let ch = clickhouse::Client::default().with_url(ch_server_url()).with_validation(false);
    ch.query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute()
        .await
        .expect("drop ClickHouse database");
}

pub fn pg_admin_url() -> String {
    std::env::var("TTLC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://ttlc:ttlc@127.0.0.1:5432/ttlc".into())
}

pub fn ch_server_url() -> String {
    std::env::var("TTLC_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A config for the local stack: unique topic prefix, fresh databases, the test JWT secret.
pub async fn config(tag: &str) -> Config {
    let mut config = ttlc_testkit::config(tag);
    // The creation time in the name lets later runs sweep databases a crashed run left behind.
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{DB_PREFIX}{}_{}", Utc::now().timestamp(), &id[..12]);
    let (client, connection) =
        tokio_postgres::connect(&pg_admin_url(), NoTls).await.expect("PostgreSQL admin");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let base = pg_admin_url();
    let cut = base.rfind('/').expect("URL has a path");
    config.postgres.url = format!("{}/{name}", &base[..cut]);
    config.clickhouse.url = format!("{}/{name}", ch_server_url());
    ttlc_archive::migrate_postgres(&config.postgres.url).await.expect("migrate PostgreSQL");
    ttlc_archive::migrate_clickhouse(&config.clickhouse.url).await.expect("migrate ClickHouse");
    config.secrets =
        Config::load_with(None, |k| (k == "TTLC_JWT_SECRET").then(|| SECRET.to_owned()))
            .expect("config")
            .secrets;
    config.http.addr = "127.0.0.1:0".into();
    config.http.heartbeat_ms = 1_000;
    config.http.rate_limit_ip_per_sec = 0.0;
    config.http.rate_limit_user_per_sec = 0.0;
    config.http.max_connections_per_user = 5_000;
    config.http.live_buffer = 8_192;
    ttlc_testkit::create_topics(&config, 3).await;
    config
}

/// A running API.
#[derive(Debug, Clone)]
pub struct TestApi {
    pub base: String,
    pub config: Config,
    pub shutdown: CancellationToken,
    pub channels: Arc<dyn ChannelControl>,
    pub replays: Arc<TestReplays>,
}

impl TestApi {
    /// Starts the API on the current runtime and waits until its live feeds are reading.
    pub async fn start(config: Config) -> TestApi {
        Self::start_with(config, Arc::new(TestChannels::default())).await
    }

    /// Like [`TestApi::start`] with `channels` behind `/channels` (e.g. the real `PgChannels`).
    pub async fn start_with(config: Config, channels: Arc<dyn ChannelControl>) -> TestApi {
        let replays = Arc::new(TestReplays::default());
        let deps = ApiDeps { channels: Some(channels.clone()), replay: Some(replays.clone()) };
        let shutdown = CancellationToken::new();
        let server = ttlc_api::bind(&config, deps, shutdown.clone()).await.expect("bind");
        let base = format!("http://{}", server.local_addr());
        tokio::spawn(async move { server.run().await.expect("serve") });
        let api = TestApi { base, config, shutdown, channels, replays };
        api.wait_live().await;
        api
    }

    pub async fn wait_live(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(self.url("/health")).send().await {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if v["live"]["unified"] == true && v["live"]["actions"] == true {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the live feeds never became ready");
    }

    /// Stops the server and drops its databases.
    pub async fn finish(self) {
        self.shutdown.cancel();
        // Let the server's connections close before the databases go.
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop_databases(&self.config).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn pg(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.config.postgres.url, NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }
}

/// The API shared by most tests of one test binary, on its own runtime (each `#[tokio::test]`
/// has a runtime that ends with the test), seeded with [`seed`].
pub static SHARED: LazyLock<TestApi> = LazyLock::new(|| {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            sweep_stale().await;
            let config = config("api").await;
            seed(&config).await;
            let api = TestApi::start(config).await;
            tx.send(api).expect("hand over");
            futures::future::pending::<()>().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(120)).expect("the shared API started")
});

pub fn token(role: Role, stream: Option<&str>) -> String {
    ttlc_api::mint_token(SECRET, role, stream, Duration::from_secs(3600)).expect("mint")
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).single().expect("valid time")
}

pub fn user(id: &str, name: &str) -> User {
    User {
        user_id: id.into(),
        unique_id: name.into(),
        display_name: Some(name.to_uppercase()),
        ..User::default()
    }
}

/// Builds an event the way normalize does (eventId = sha256 of `stream:session:seq:rawType`).
pub fn event(
    stream: &str,
    session: &str,
    seq: i64,
    at: DateTime<Utc>,
    user: User,
    payload: Payload,
) -> UnifiedEvent {
    let event_type = payload.event_type();
    let raw_type = format!("Webcast{event_type}");
    let event_id = hex::encode(Sha256::digest(format!("{stream}:{session}:{seq}:{raw_type}")));
    UnifiedEvent {
        schema_version: "1".into(),
        event_id,
        event_type,
        trigger_id: event_type.trigger_id(),
        stream_id: stream.into(),
        session_id: session.into(),
        timestamp: at,
        ingested_at: Some(at),
        source: Source::Live,
        seq_no: Some(seq),
        user,
        payload: Some(payload),
    }
}

pub fn chat(stream: &str, session: &str, seq: i64, user: User, text: &str) -> UnifiedEvent {
    let at = base_time() + chrono::Duration::seconds(seq);
    event(
        stream,
        session,
        seq,
        at,
        user,
        Payload::Chat(ChatPayload { message: text.into(), ..Default::default() }),
    )
}

pub fn gift(
    stream: &str,
    session: &str,
    seq: i64,
    user: User,
    count: i64,
    streak: Option<bool>,
) -> UnifiedEvent {
    let at = base_time() + chrono::Duration::seconds(seq);
    let payload = GiftPayload {
        gift_id: 5655,
        gift_name: "Rose".into(),
        gift_count: count,
        coins: count * 5,
        diamond_count: Some(5),
        // Some(false): a streak frame still running; Some(true): its final frame; None: no streak.
        streak_active: streak.map(|end| !end),
        streak_end: streak,
        is_gift_streak: streak.map(|_| true),
        ..Default::default()
    };
    event(stream, session, seq, at, user, Payload::Gift(payload))
}

/// Seeded data of the shared API.
///
/// Stream A, session A: CONNECTED; 3 chats by alice, 1 by both; a Rose streak by bob with
/// frames ×1, ×2 (running) and ×3 (final: 15 coins); a non-streak gift ×2 by alice (10 coins);
/// 2 likes (5 + 7); a follow; a share; 2 joins with viewer counts 40 and 55.
/// Stream B, session B: CONNECTED; 2 chats by `both`.
pub fn seed_events() -> Vec<UnifiedEvent> {
    let (alice, bob, both) =
        (user("9000002", "alice"), user("9000003", "bob"), user(USER_BOTH, "both"));
    let t = |seq: i64| base_time() + chrono::Duration::seconds(seq);
    let (a, sa) = (STREAM_A, SESSION_A);
    let connected = |stream: &str, session: &str| {
        event(
            stream,
            session,
            0,
            t(0),
            User::system(),
            Payload::Connected(ConnectedPayload {
                room_id: Some(stream.into()),
                ..Default::default()
            }),
        )
    };
    vec![
        connected(a, sa),
        chat(a, sa, 1, alice.clone(), "hello"),
        chat(a, sa, 2, alice.clone(), "how are you"),
        chat(a, sa, 3, alice.clone(), "third"),
        chat(a, sa, 4, both.clone(), "hi from both"),
        gift(a, sa, 5, bob.clone(), 1, Some(false)),
        gift(a, sa, 6, bob.clone(), 2, Some(false)),
        gift(a, sa, 7, bob.clone(), 3, Some(true)),
        gift(a, sa, 8, alice.clone(), 2, None),
        event(
            a,
            sa,
            9,
            t(9),
            bob.clone(),
            Payload::Like(LikePayload { like_count: 5, total_like_count: 5 }),
        ),
        event(
            a,
            sa,
            10,
            t(70),
            alice.clone(),
            Payload::Like(LikePayload { like_count: 7, total_like_count: 12 }),
        ),
        event(
            a,
            sa,
            11,
            t(71),
            bob.clone(),
            Payload::Follow(SocialPayload { display_type: SocialPayload::FOLLOW.into() }),
        ),
        event(
            a,
            sa,
            12,
            t(72),
            bob.clone(),
            Payload::Share(SocialPayload { display_type: SocialPayload::SHARE.into() }),
        ),
        event(
            a,
            sa,
            13,
            t(73),
            alice.clone(),
            Payload::Join(JoinPayload { viewer_count: Some(40), action_id: None }),
        ),
        event(
            a,
            sa,
            14,
            t(74),
            bob,
            Payload::Join(JoinPayload { viewer_count: Some(55), action_id: None }),
        ),
        connected(STREAM_B, SESSION_B),
        chat(STREAM_B, SESSION_B, 1, both.clone(), "b one"),
        chat(STREAM_B, SESSION_B, 2, both, "b two"),
    ]
}

pub fn records(events: &[UnifiedEvent]) -> Vec<InputRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| InputRecord {
            topic: "seed.unified".into(),
            partition: 0,
            offset: i as i64,
            key: Some(e.stream_id.clone().into_bytes()),
            payload: Some(ttlc_schemas::encode_unified(e).expect("encodes")),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect()
}

/// Stores the seed events through the archive stages, twice (re-delivery must not double count).
pub async fn seed(config: &Config) {
    let recs = records(&seed_events());
    let mut pg = ttlc_archive::PgArchiver::connect(config).await.expect("PgArchiver");
    let mut ch = ttlc_archive::ChArchiver::connect(config).await.expect("ChArchiver");
    for _ in 0..2 {
        pg.handle(&recs).await.expect("archive to PostgreSQL");
        ch.handle(&recs).await.expect("archive to ClickHouse");
    }
}

/// Produces events to `unified` (key = streamId, as normalize does).
pub async fn produce(config: &Config, events: &[UnifiedEvent]) {
    let records: Vec<(Vec<u8>, Vec<u8>)> = events
        .iter()
        .map(|e| {
            (e.stream_id.clone().into_bytes(), ttlc_schemas::encode_unified(e).expect("encodes"))
        })
        .collect();
    ttlc_testkit::produce(config, Topic::Unified, &records).await;
}
