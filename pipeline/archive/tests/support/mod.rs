//! Shared helpers for the archive integration tests: a fresh database per test (so tests run in
//! parallel and never see each other's rows), event builders, and a TCP proxy that can cut the
//! connection to PostgreSQL without disturbing anyone else using the server.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use ttlc_core::InputRecord;
use ttlc_core::config::Config;
use ttlc_schemas::event::{
    ChatPayload, ConnectedPayload, DisconnectedPayload, GiftPayload, JoinPayload, LikePayload,
    Payload, RawPayload,
};
use ttlc_schemas::{Source, UnifiedEvent, User};

/// The admin connection (a role with CREATEDB): `TTLC_DATABASE_URL` or the local stack's.
pub fn pg_admin_url() -> String {
    std::env::var("TTLC_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://ttlc:ttlc@127.0.0.1:5432/ttlc".into())
}

/// The ClickHouse server without a database: from `TTLC_CLICKHOUSE_URL` or the local stack's.
pub fn ch_server_url() -> String {
    let url = std::env::var("TTLC_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123/ttlc".into());
    let mut parsed = url::Url::parse(&url).expect("valid ClickHouse URL");
    parsed.set_path("");
    parsed.to_string().trim_end_matches('/').to_owned()
}

/// `host:port` of a URL, for the proxy to forward to.
pub fn socket_addr(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("valid URL");
    let host = parsed.host_str().expect("host");
    let port = parsed.port_or_known_default().unwrap_or(5432);
    format!("{host}:{port}").parse().expect("a numeric host:port")
}

fn unique_name() -> String {
    format!("ttlc_t_{}", uuid::Uuid::new_v4().simple())
}

/// A PostgreSQL database that exists for one test.
#[derive(Debug)]
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        let name = unique_name();
        admin(&format!("CREATE DATABASE {name}")).await;
        let base = pg_admin_url();
        let cut = base.rfind('/').expect("database URL has a path");
        PgDb { url: format!("{}/{name}", &base[..cut]), name }
    }

    /// A plain connection as the login role (the schema owner).
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// Cleanup only: an autovacuum worker in the fresh database makes a forced drop fail (it runs
    /// as the superuser), and a leftover `ttlc_t_*` database is harmless.
    pub async fn drop_db(self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(error) = connect(&pg_admin_url()).await.batch_execute(&sql).await {
            eprintln!("note: test database {} left behind: {error}", self.name);
        }
    }
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

async fn admin(sql: &str) {
    connect(&pg_admin_url()).await.batch_execute(sql).await.expect(sql);
}

/// A ClickHouse database that exists for one test.
#[derive(Debug)]
pub struct ChDb {
    pub name: String,
    pub url: String,
}

impl ChDb {
    /// Names a fresh database; migrations create it.
    pub fn new() -> ChDb {
        let name = unique_name();
        ChDb { url: format!("{}/{name}", ch_server_url()), name }
    }

    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(ch_server_url())
            .with_database(&self.name)
            .with_validation(false)
    }

    pub async fn count(&self, sql: &str) -> u64 {
        self.client().query(sql).fetch_one::<u64>().await.expect(sql)
    }

    pub async fn drop_db(self) {
        let client = clickhouse::Client::default().with_url(ch_server_url());
        client
            .query(&format!("DROP DATABASE IF EXISTS {}", self.name))
            .execute()
            .await
            .expect("drop");
    }
}

/// A config pointing at the given stores, everything else default.
pub fn config(pg_url: &str, ch_url: &str) -> Config {
    let mut config = Config::default();
    config.postgres.url = pg_url.into();
    config.postgres.connect_timeout_ms = 2_000;
    config.postgres.write_timeout_ms = 10_000;
    config.clickhouse.url = ch_url.into();
    config.clickhouse.write_timeout_ms = 10_000;
    config
}

/// Builds one event the way normalize does (eventId = sha256 of `stream:session:seq:rawType`).
pub fn event(
    stream: &str,
    session: &str,
    seq: i64,
    at: DateTime<Utc>,
    user: User,
    payload: Payload,
) -> UnifiedEvent {
    let event_type = payload.event_type();
    let raw_type = match &payload {
        Payload::Raw(raw) => raw.raw_type.clone(),
        _ => format!("Webcast{event_type}"),
    };
    let event_id = hex::encode(Sha256::digest(format!("{stream}:{session}:{seq}:{raw_type}")));
    UnifiedEvent {
        schema_version: "1".into(),
        event_id,
        event_type,
        trigger_id: event_type.trigger_id(),
        stream_id: stream.into(),
        session_id: session.into(),
        timestamp: at,
        ingested_at: Some(at + Duration::milliseconds(40)),
        source: Source::Live,
        seq_no: Some(seq),
        user,
        payload: Some(payload),
    }
}

pub fn user(n: usize) -> User {
    User {
        user_id: format!("{}", 7_000_000 + n),
        unique_id: format!("viewer{n}"),
        display_name: Some(format!("Viewer {n}")),
        ..User::default()
    }
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).single().expect("valid time")
}

/// A whole session: CONNECTED, `n - 2` mixed user events from `users` distinct users, then
/// DISCONNECTED; one event per 100 ms.
pub fn session(stream: &str, session: &str, n: usize, users: usize) -> Vec<UnifiedEvent> {
    assert!(n >= 2);
    let t0 = base_time();
    let at = |i: usize| t0 + Duration::milliseconds(100 * i as i64);
    let mut out = vec![event(
        stream,
        session,
        0,
        at(0),
        User::system(),
        Payload::Connected(ConnectedPayload { room_id: Some(stream.into()), ..Default::default() }),
    )];
    for i in 1..n - 1 {
        let payload = match i % 5 {
            0 => Payload::Chat(ChatPayload {
                message: format!("hello number {i}"),
                ..Default::default()
            }),
            1 => Payload::Gift(GiftPayload {
                gift_id: 5655,
                gift_name: "Rose".into(),
                gift_count: 1,
                coins: 1,
                diamond_count: Some(1),
                ..Default::default()
            }),
            2 => Payload::Like(LikePayload { like_count: 3, total_like_count: 100 + i as i64 }),
            3 => Payload::Join(JoinPayload { viewer_count: Some(50 + i as i64), action_id: None }),
            _ => {
                Payload::Raw(RawPayload { raw_type: "WebcastRankUpdateMessage".into(), data: None })
            }
        };
        out.push(event(stream, session, i as i64, at(i), user(i % users), payload));
    }
    out.push(event(
        stream,
        session,
        (n - 1) as i64,
        at(n - 1),
        User::system(),
        Payload::Disconnected(DisconnectedPayload {
            reason: Some("stream ended".into()),
            ..Default::default()
        }),
    ));
    out
}

/// The records the `unified` topic would carry for `events`.
pub fn records(events: &[UnifiedEvent]) -> Vec<InputRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| InputRecord {
            topic: "test.unified".into(),
            partition: 0,
            offset: i as i64,
            key: Some(e.stream_id.clone().into_bytes()),
            payload: Some(ttlc_schemas::avro::encode_unified(e).expect("encodes")),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect()
}

/// A TCP proxy in front of a server, which a test can cut (every connection dropped, new ones
/// refused) and restore, simulating a database outage that only this test sees.
#[derive(Debug)]
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (up, links) = (up.clone(), links.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        // Down: accept and hang up at once, like a server that is not there.
                        drop(inbound);
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().await.push(link);
                }
            }
        });
        TcpProxy { addr, up, links, accept }
    }

    /// Drops every open connection and refuses new ones.
    pub async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_via(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).expect("valid URL");
        parsed.set_host(Some("127.0.0.1")).expect("host");
        parsed.set_port(Some(self.addr.port())).expect("port");
        parsed.to_string()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
