//! Shared setup for ingest's integration tests: a mock TikTok on 127.0.0.1, the real local broker
//! with a unique topic prefix per test, and short timers so reconnects take milliseconds.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use ttlc_core::config::Config;
use ttlc_ingest::mock_server::{MockConfig, MockServer};
use ttlc_schemas::RawEnvelope;
use ttlc_topics::Topic;

/// A test config against the local broker with fresh topics (3 partitions each) and ingest
/// pointed at `mock`, with short reconnect and heartbeat timers.
pub async fn config(tag: &str, mock: &MockServer, api_key: Option<&str>) -> Config {
    let base = ttlc_testkit::config(tag);
    let key = api_key.map(str::to_owned);
    let mut c =
        Config::load_with(
            None,
            move |name| {
                if name == "TTLC_SIGN_API_KEY" { key.clone() } else { None }
            },
        )
        .expect("config");
    c.kafka = base.kafka;
    c.runner = base.runner;
    c.ingest.sign_api_url = mock.base_url();
    c.ingest.tiktok_web_url = mock.base_url();
    c.ingest.reconnect_initial_ms = 300;
    c.ingest.reconnect_max_ms = 3_000;
    c.ingest.heartbeat_interval_ms = 200;
    c.ingest.idle_timeout_ms = 5_000;
    c.ingest.request_timeout_ms = 5_000;
    c.ingest.gift_streak_quiet_ms = 500;
    c.ingest.sign_requests_per_sec = 50.0;
    c.ingest.sign_max_concurrent = 4;
    ttlc_testkit::create_topics(&c, 3).await;
    c
}

/// A mock with short timers: heartbeats every 200 ms, dropped after 1 s without one.
pub fn mock_config() -> MockConfig {
    MockConfig {
        heartbeat_interval: Duration::from_millis(200),
        heartbeat_timeout: Duration::from_millis(1_000),
        frame_interval: Duration::from_millis(20),
        ..MockConfig::default()
    }
}

/// Every raw envelope published under `config`'s prefix (at least `expected`, or all that came
/// before the topic went quiet for 3 s), parsed and validated as raw.v1.
pub async fn read_raw(config: &Config, expected: usize) -> Vec<RawEnvelope> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        ttlc_testkit::read_all(&config, Topic::Raw, expected, Duration::from_secs(3))
            .into_iter()
            .map(|r| {
                let payload = r.payload.expect("payload");
                let env: RawEnvelope = serde_json::from_slice(&payload).expect("raw.v1 envelope");
                assert_eq!(r.key.as_deref(), Some(env.stream_id.as_bytes()), "key = streamId");
                env
            })
            .collect()
    })
    .await
    .expect("reader")
}

/// Envelopes of one stream, in log order (one stream lives in one partition).
pub fn of_stream<'a>(all: &'a [RawEnvelope], stream_id: &str) -> Vec<&'a RawEnvelope> {
    all.iter().filter(|e| e.stream_id == stream_id).collect()
}

/// The TikTok messages among `envs` (lifecycle envelopes and viewer counts left out).
pub fn messages<'a>(envs: &[&'a RawEnvelope]) -> Vec<&'a RawEnvelope> {
    envs.iter()
        .copied()
        .filter(|e| {
            !e.raw_type.starts_with("ControlEvent.") && e.raw_type != "WebcastRoomUserSeqMessage"
        })
        .collect()
}

pub fn bytes(env: &RawEnvelope) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(env.data_b64.as_deref().expect("dataB64"))
        .expect("base64")
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}
