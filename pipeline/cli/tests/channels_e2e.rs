//! `/channels` with the API and ingest as separate processes: the real `ttlc api` and `ttlc ingest
//! --provider direct` binaries, the mock TikTok server, the real broker and a fresh PostgreSQL
//! database. What an operator sees: a POSTed channel connects and its frames reach `raw`; a
//! streamer of another stream may not stop it; DELETE stops it (frames stop, the last one is
//! DISCONNECTED); unknown channels are 404; and after `kill -9` of ingest a restarted ingest
//! brings back the channel still requested, not the stopped one. And `ttlc all` goes through the
//! same table: its configured channels are listed and stoppable, requested ones start.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use ttlc_api::Role;
use ttlc_core::config::Config;
use ttlc_ingest::mock_server::{MockConfig, MockServer, Scenario};
use ttlc_schemas::RawEnvelope;
use ttlc_testkit::pg::PgDb;
use ttlc_topics::Topic;

const JWT_SECRET: &str = "channels-e2e-development-secret-0123456789abcdef";

/// Kills the process if the test panics, so a failed test leaves nothing running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ttlc` with the test's broker, topics, database and mock TikTok, and fast control timers.
fn ttlc(config: &Config, mock: &MockServer) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ttlc"));
    cmd.env("TTLC_BROKERS", &config.kafka.brokers)
        .env("TTLC_TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env("TTLC_DATABASE_URL", &config.postgres.url)
        .env("TTLC__RUNNER__GROUP_PREFIX", &config.runner.group_prefix)
        .env("TTLC_JWT_SECRET", JWT_SECRET)
        .env("TTLC_SIGN_API_URL", mock.base_url())
        .env("TTLC__INGEST__TIKTOK_WEB_URL", mock.base_url())
        .env("TTLC__INGEST__HEARTBEAT_INTERVAL_MS", "200")
        .env("TTLC__INGEST__RECONNECT_INITIAL_MS", "300")
        .env("TTLC__INGEST__CONTROL_POLL_MS", "200")
        .env("TTLC__INGEST__CONTROL_LEASE_MS", "2000")
        .env("TTLC__LOG__LEVEL", "warn")
        .stdout(Stdio::null());
    cmd
}

/// A fresh database and topics, and the mock TikTok server (chatting at `rate` frames/s, or its
/// default), stopped by the returned token.
async fn setup(tag: &str, rate: Option<u32>) -> (PgDb, Config, MockServer, CancellationToken) {
    let db = PgDb::create().await;
    let mut config = ttlc_testkit::config(tag);
    config.postgres.url = db.url.clone();
    ttlc_testkit::create_topics(&config, 3).await;
    let stop_mock = CancellationToken::new();
    let defaults = MockConfig::default();
    let mock = MockServer::start(
        MockConfig {
            scenario: Scenario::Chat,
            rate: rate.unwrap_or(defaults.rate),
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(2),
            frame_interval: Duration::from_millis(20),
            ..defaults
        },
        stop_mock.clone(),
    )
    .await
    .unwrap();
    (db, config, mock, stop_mock)
}

fn spawn_ingest(config: &Config, mock: &MockServer) -> Proc {
    Proc(ttlc(config, mock).args(["ingest", "--provider", "direct"]).spawn().unwrap())
}

struct Api {
    base: String,
    http: reqwest::Client,
    operator: String,
}

impl Api {
    /// The API at `addr`, called as an operator.
    fn new(addr: &str) -> Api {
        let ttl = Duration::from_secs(600);
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
            operator: ttlc_api::mint_token(JWT_SECRET, Role::Operator, None, ttl).unwrap(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn channel(&self, unique_id: &str) -> Option<Value> {
        let (status, body) =
            self.call(reqwest::Method::GET, "/channels", &self.operator, None).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().iter().find(|c| c["uniqueId"] == unique_id).cloned()
    }

    /// Polls GET /channels until `unique_id` satisfies `ok`, for at most `bound`.
    async fn wait_for(
        &self,
        unique_id: &str,
        bound: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let channel = self.channel(unique_id).await;
            if let Some(c) = channel.as_ref().filter(|c| ok(c)) {
                return c.clone();
            }
            assert!(start.elapsed() < bound, "@{unique_id} never got there: {channel:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Envelopes of `stream` on `raw`, in order: everything until the topic was quiet for 2 s, or
/// 8 s of reading while other channels keep it busy. (Not high watermarks: Tansu's can lag.)
async fn raw_of(config: &Config, stream: &str) -> Vec<RawEnvelope> {
    let (config, stream) = (config.clone(), stream.to_owned());
    tokio::task::spawn_blocking(move || {
        let name = Topic::Raw.full_name(&config.kafka.topic_prefix);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka.brokers)
            .set("group.id", format!("{}reader", config.runner.group_prefix))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap();
        let md = consumer.fetch_metadata(Some(&name), Duration::from_secs(10)).unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..md.topics()[0].partitions().len() as i32 {
            tpl.add_partition_offset(&name, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let (start, mut last_new) = (Instant::now(), Instant::now());
        let mut out = Vec::new();
        while last_new.elapsed() < Duration::from_secs(2)
            && start.elapsed() < Duration::from_secs(8)
        {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m.unwrap();
                last_new = Instant::now();
                let e: RawEnvelope = serde_json::from_slice(m.payload().unwrap()).unwrap();
                if e.stream_id == stream {
                    out.push(e);
                }
            }
        }
        out
    })
    .await
    .unwrap()
}

fn connected(c: &Value) -> bool {
    c["state"] == "connected" && c["streamId"].is_string() && c["sessionId"].is_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_work_with_api_and_ingest_as_separate_processes() {
    let (db, config, mock, stop_mock) = setup("chan-e2e", Some(20)).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let api_proc =
        Proc(ttlc(&config, &mock).arg("api").env("TTLC_HTTP_ADDR", &addr).spawn().unwrap());
    let mut ingest = spawn_ingest(&config, &mock);
    let api = Api::new(&addr);
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the API did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use reqwest::Method as M;

    // An operator starts @e2e_alice: it connects, reports its room, and its frames reach raw.
    let (status, body) = api
        .call(M::POST, "/channels", &api.operator, Some(json!({"uniqueId": "@e2e_alice"})))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["uniqueId"], "e2e_alice");
    let alice = api.wait_for("e2e_alice", Duration::from_secs(30), connected).await;
    let room = mock.room("@e2e_alice").unwrap();
    assert_eq!(alice["streamId"], room.room_id.to_string());
    let stream = room.room_id.to_string();
    let start = Instant::now();
    loop {
        let frames = raw_of(&config, &stream).await;
        if frames.iter().any(|e| e.raw_type == "WebcastChatMessage") {
            assert_eq!(frames[0].raw_type, "ControlEvent.CONNECTED");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no chat frames on raw: {frames:?}");
    }
    // Starting it again while it runs is a conflict.
    let (status, body) =
        api.call(M::POST, "/channels", &api.operator, Some(json!({"uniqueId": "e2e_alice"}))).await;
    assert_eq!(status, 409, "{body}");

    // A streamer of another stream can neither see nor stop it.
    let ttl = Duration::from_secs(600);
    let other = ttlc_api::mint_token(JWT_SECRET, Role::Streamer, Some("1234"), ttl).unwrap();
    let (status, body) = api.call(M::GET, "/channels", &other, None).await;
    assert_eq!((status, body.clone()), (200, json!([])), "{body}");
    let (status, body) = api.call(M::DELETE, "/channels/e2e_alice", &other, None).await;
    assert_eq!(status, 403, "{body}");
    // Its own streamer sees it.
    let own = ttlc_api::mint_token(JWT_SECRET, Role::Streamer, Some(stream.as_str()), ttl).unwrap();
    let (status, body) = api.call(M::GET, "/channels", &own, None).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["uniqueId"], "e2e_alice", "{body}");

    // The operator stops it: stopped, and its last frame is DISCONNECTED (no reconnect).
    let (status, body) = api.call(M::DELETE, "/channels/e2e_alice", &api.operator, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["state"] == "stopping" || body["state"] == "stopped", "{body}");
    api.wait_for("e2e_alice", Duration::from_secs(15), |c| c["state"] == "stopped").await;
    let after_stop = raw_of(&config, &stream).await;
    let last = after_stop.last().unwrap();
    assert_eq!(last.raw_type, "ControlEvent.DISCONNECTED", "{last:?}");
    assert_eq!(last.data.as_ref().unwrap()["willReconnect"], false);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(raw_of(&config, &stream).await.len(), after_stop.len(), "frames after the stop");
    let alice_connections = mock.room("@e2e_alice").unwrap().connections;

    // Unknown and already stopped channels are 404.
    let (status, body) = api.call(M::DELETE, "/channels/nobody_here", &api.operator, None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = api.call(M::DELETE, "/channels/e2e_alice", &api.operator, None).await;
    assert_eq!(status, 404, "{body}");

    // @e2e_bob runs; kill -9 ingest and start it again: once the dead process's lease expires,
    // bob comes back in a new session, and alice (stopped) does not.
    let (status, body) =
        api.call(M::POST, "/channels", &api.operator, Some(json!({"uniqueId": "e2e_bob"}))).await;
    assert_eq!(status, 201, "{body}");
    let bob = api.wait_for("e2e_bob", Duration::from_secs(30), connected).await;
    let first_session = bob["sessionId"].clone();
    ingest.0.kill().unwrap(); // SIGKILL: no lease release, no DISCONNECTED
    ingest.0.wait().unwrap();
    let restarted = spawn_ingest(&config, &mock);
    let bob = api
        .wait_for("e2e_bob", Duration::from_secs(30), |c| {
            connected(c) && c["sessionId"] != first_session
        })
        .await;
    assert_eq!(bob["streamId"], mock.room("@e2e_bob").unwrap().room_id.to_string());
    let alice = api.channel("e2e_alice").await.unwrap();
    assert_eq!(alice["state"], "stopped", "{alice}");
    assert_eq!(mock.room("@e2e_alice").unwrap().connections, alice_connections);
    assert_eq!(raw_of(&config, &stream).await.len(), after_stop.len(), "alice stayed stopped");

    drop((restarted, api_proc));
    stop_mock.cancel();
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttlc_all_runs_configured_and_requested_channels_through_the_table() {
    let (db, config, mock, stop_mock) = setup("chan-all", None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ttlc.toml");
    std::fs::write(&file, "[ingest]\nchannels = [\"@all_boot\"]\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = ttlc(&config, &mock);
    if let Ok(url) = std::env::var("TTLC_CLICKHOUSE_URL") {
        cmd.env("TTLC_CLICKHOUSE_URL", url);
    }
    let all = Proc(
        cmd.arg("all").env("TTLC_CONFIG", &file).env("TTLC_HTTP_ADDR", &addr).spawn().unwrap(),
    );
    let api = Api::new(&addr);
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "ttlc all did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    use reqwest::Method as M;

    // The configured channel runs, and /channels sees it.
    let boot = api.wait_for("all_boot", Duration::from_secs(30), connected).await;
    assert_eq!(boot["streamId"], mock.room("@all_boot").unwrap().room_id.to_string());
    // A requested one starts; stopping the configured one works like any other.
    let (status, body) =
        api.call(M::POST, "/channels", &api.operator, Some(json!({"uniqueId": "all_new"}))).await;
    assert_eq!(status, 201, "{body}");
    api.wait_for("all_new", Duration::from_secs(30), connected).await;
    let (status, body) = api.call(M::DELETE, "/channels/all_boot", &api.operator, None).await;
    assert_eq!(status, 200, "{body}");
    api.wait_for("all_boot", Duration::from_secs(15), |c| c["state"] == "stopped").await;
    assert_eq!(mock.room("@all_boot").unwrap().connections, 1);

    drop(all);
    stop_mock.cancel();
    db.drop_db().await;
}
