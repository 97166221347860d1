//! Session replay as the operator and the API drive it, against the real broker and a fresh
//! PostgreSQL database: `ttlc replay SESSION` prints the new sessionId and publishes every stored
//! event; `POST /sessions/{id}/replay` on a standalone `ttlc api` answers 202 with a new session
//! whose events reach `raw`, and 404 for a session that does not exist.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use ttlc_core::config::Config;
use ttlc_core::{InputRecord, Stage};
use ttlc_schemas::event::{ChatPayload, LikePayload};
use ttlc_schemas::{Payload, RawEnvelope, Source, UnifiedEvent, User};
use ttlc_testkit::pg::PgDb;
use ttlc_topics::Topic;

const STREAM: &str = "7438214567890000001";
const JWT_SECRET: &str = "replay-e2e-development-secret-0123456789abcdef";

/// A fresh database holding one archived session of `n` events; `config` points at it.
async fn stored_session(config: &mut Config, n: usize) -> (PgDb, String) {
    let db = PgDb::create().await;
    config.postgres.url = db.url.clone();
    let session = uuid::Uuid::new_v4().to_string();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 19, 0, 0).single().unwrap();
    let events: Vec<UnifiedEvent> = (0..n)
        .map(|i| {
            let payload = if i % 2 == 0 {
                Payload::Chat(ChatPayload { message: format!("hi {i}"), ..Default::default() })
            } else {
                Payload::Like(LikePayload { like_count: 1, total_like_count: i as i64 })
            };
            let raw_type = format!("Webcast{}", payload.event_type());
            UnifiedEvent {
                schema_version: "1".into(),
                event_id: ttlc_normalize::event_id(STREAM, &session, 100 + i as i64, &raw_type),
                event_type: payload.event_type(),
                trigger_id: payload.event_type().trigger_id(),
                stream_id: STREAM.into(),
                session_id: session.clone(),
                timestamp: t0 + chrono::Duration::milliseconds(20 * i as i64),
                ingested_at: None,
                source: Source::Live,
                seq_no: Some(100 + i as i64),
                user: User {
                    user_id: format!("{}", 6_900 + i % 3),
                    unique_id: format!("u{}", i % 3),
                    ..User::default()
                },
                payload: Some(payload),
            }
        })
        .collect();
    let records: Vec<InputRecord> = events
        .iter()
        .enumerate()
        .map(|(i, e)| InputRecord {
            topic: "t.unified".into(),
            partition: 0,
            offset: i as i64,
            key: Some(STREAM.as_bytes().to_vec()),
            payload: Some(ttlc_schemas::encode_unified(e).unwrap()),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    let mut archiver = ttlc_archive::PgArchiver::connect(config).await.unwrap();
    archiver.handle(&records).await.unwrap();
    (db, session)
}

fn ttlc(config: &Config) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ttlc"));
    cmd.env("TTLC_BROKERS", &config.kafka.brokers)
        .env("TTLC_TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env("TTLC_DATABASE_URL", &config.postgres.url)
        .env("TTLC_JWT_SECRET", JWT_SECRET)
        .env("TTLC__LOG__LEVEL", "warn");
    cmd
}

/// Replayed envelopes of `session` on `raw`, read until the topic holds `expected_total`
/// records of any session or stays quiet for 3 s.
fn replayed(config: &Config, session: &str, expected_total: usize) -> Vec<RawEnvelope> {
    ttlc_testkit::read_all(config, Topic::Raw, expected_total, Duration::from_secs(3))
        .iter()
        .map(|r| serde_json::from_slice::<RawEnvelope>(r.payload.as_deref().unwrap()).unwrap())
        .filter(|e| e.session_id == session)
        .collect()
}

#[tokio::test]
async fn ttlc_replay_prints_the_new_session_and_publishes_every_event() {
    let mut config = ttlc_testkit::config("replay-cli");
    ttlc_testkit::create_topics(&config, 3).await;
    let (db, original) = stored_session(&mut config, 120).await;

    let out = ttlc(&config)
        .args(["replay", &original, "--speed", "0", "--rate-cap", "2000"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let new_session = stdout.trim();
    assert!(uuid::Uuid::parse_str(new_session).is_ok(), "stdout is the session id: {stdout:?}");
    let envs = replayed(&config, new_session, 121);
    assert_eq!(envs.len(), 120);
    let seqs: Vec<i64> = envs.iter().map(|e| e.seq_no).collect();
    assert_eq!(seqs, (100..220).collect::<Vec<i64>>());
    assert!(envs.iter().all(|e| e.source == Source::Replay && e.raw_type.starts_with("Replay.")));

    // An unknown session fails without printing a session id.
    let unknown = uuid::Uuid::new_v4().to_string();
    let out = ttlc(&config).args(["replay", &unknown]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stored events"));

    // SIGINT mid-replay: exit 130, and everything it reported as sent reached the broker.
    let child = ttlc(&config)
        .args(["replay", &original, "--speed", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let interrupted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let sent: usize = stderr
        .split(": sent ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"));
    assert!((1..120).contains(&sent), "sent {sent}: {stderr}");
    // The topic already holds the first replay's 120; one more than expected proves no extra.
    let envs = replayed(&config, &interrupted, 120 + sent + 1);
    assert_eq!(envs.len(), sent);
    db.drop_db().await;
}

/// Kills the API if the test panics, so a failed test leaves nothing running.
struct Api(Child);

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; returns (status, body).
fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_api_starts_replays_in_the_background() {
    let mut config = ttlc_testkit::config("replay-api");
    ttlc_testkit::create_topics(&config, 3).await;
    let (db, original) = stored_session(&mut config, 40).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let api = Api(ttlc(&config)
        .arg("api")
        .env("TTLC_HTTP_ADDR", &addr)
        .env("TTLC__RUNNER__GROUP_PREFIX", &config.runner.group_prefix)
        .stdout(Stdio::null())
        .spawn()
        .unwrap());
    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the API did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ttl = Duration::from_secs(600);
    let token =
        ttlc_api::mint_token(JWT_SECRET, ttlc_api::Role::Streamer, Some(STREAM), ttl).unwrap();

    let path = format!("/sessions/{original}/replay");
    let (status, body) = http(&addr, "POST", &path, &token, r#"{"speed":0}"#);
    assert_eq!(status, 202, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let new_session = body["sessionId"].as_str().unwrap().to_owned();
    assert_ne!(new_session, original);
    let envs = tokio::task::spawn_blocking({
        let (config, s) = (config.clone(), new_session.clone());
        move || replayed(&config, &s, 41)
    })
    .await
    .unwrap();
    assert_eq!(envs.len(), 40);

    let unknown = format!("/sessions/{}/replay", uuid::Uuid::new_v4());
    let (status, body) = http(&addr, "POST", &unknown, &token, r#"{"speed":1}"#);
    assert_eq!(status, 404, "{body}");
    drop(api);
    db.drop_db().await;
}
