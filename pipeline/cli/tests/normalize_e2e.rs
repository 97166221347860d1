//! `ttlc normalize` as a process against the real broker: N raw frames in → exactly N unified
//! records out plus one DLQ record per malformed frame; SIGKILL mid-stream and a restart lose no
//! eventId; SIGTERM exits promptly with offsets committed.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use ttlc_core::config::Config;
use ttlc_testkit as kit;
use ttlc_topics::Topic;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures"))
}

/// Every golden raw fixture, as JSON templates.
fn templates() -> Vec<Value> {
    let mut out: Vec<Value> = std::fs::read_dir(fixtures().join("raw"))
        .expect("fixtures/raw")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    out.sort_by_key(|v| v["seqNo"].as_i64());
    assert!(out.len() >= 13, "expected golden raw fixtures, found {}", out.len());
    out
}

/// `n` valid raw frames (templates with fresh seqNos) and their expected event ids.
/// `(key, payload)` records to produce.
type Records = Vec<(Vec<u8>, Vec<u8>)>;

fn valid_inputs(n: usize) -> (Records, HashSet<String>) {
    let templates = templates();
    let mut records = Vec::with_capacity(n);
    let mut ids = HashSet::with_capacity(n);
    for i in 0..n {
        let mut frame = templates[i % templates.len()].clone();
        frame["seqNo"] = Value::from(10_000_000 + i as i64);
        let bytes = serde_json::to_vec(&frame).unwrap();
        let event = ttlc_normalize::normalize_bytes(&bytes).expect("template normalizes");
        ids.insert(event.event_id);
        records.push((event.stream_id.into_bytes(), bytes));
    }
    assert_eq!(ids.len(), n, "distinct inputs give distinct ids");
    (records, ids)
}

/// Every malformed fixture file, as raw bytes.
fn malformed_inputs() -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = fixtures().join("malformed");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/malformed")
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "expected.json"))
        .map(|p| (b"malformed".to_vec(), std::fs::read(p).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 5, "expected malformed fixtures");
    out
}

/// Kills the stage process if the test panics, so a failed test leaves nothing running.
struct Stage(Child);

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_normalize(config: &Config) -> Stage {
    Stage(
        Command::new(env!("CARGO_BIN_EXE_ttlc"))
            .arg("normalize")
            .env("TTLC_BROKERS", &config.kafka.brokers)
            .env("TTLC_TOPIC_PREFIX", &config.kafka.topic_prefix)
            .env("TTLC__RUNNER__GROUP_PREFIX", &config.runner.group_prefix)
            .env("TTLC__RUNNER__BATCH_SIZE", "500")
            .env(
                "TTLC__LOG__LEVEL",
                std::env::var("TTLC_TEST_STAGE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ttlc normalize"),
    )
}

fn unified_ids(config: &Config, expected: usize, quiet: Duration) -> Vec<String> {
    kit::read_all(config, Topic::Unified, expected, quiet)
        .iter()
        .map(|r| ttlc_schemas::decode_unified(r.payload.as_deref().unwrap()).unwrap().event_id)
        .collect()
}

fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn terminate(Stage(child): &mut Stage) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "SIGTERM did not stop the stage");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_in_n_out_and_malformed_to_dlq() {
    let config = kit::config("norm-e2e");
    kit::create_topics(&config, 4).await;
    let (valid, ids) = valid_inputs(2_000);
    let malformed = malformed_inputs();
    // Malformed frames sit between valid ones: processing must continue past each.
    let mut all = Vec::new();
    for (i, chunk) in valid.chunks(valid.len() / malformed.len() + 1).enumerate() {
        all.extend_from_slice(chunk);
        if let Some(bad) = malformed.get(i) {
            all.push(bad.clone());
        }
    }
    kit::produce(&config, Topic::Raw, &all).await;

    let mut child = spawn_normalize(&config);
    wait_for(
        || unified_ids(&config, ids.len(), Duration::from_millis(500)).len() >= ids.len(),
        Duration::from_secs(120),
    );
    let status = terminate(&mut child);
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    let out = unified_ids(&config, usize::MAX, Duration::from_secs(2));
    assert_eq!(out.len(), ids.len(), "exactly N unified records");
    assert_eq!(out.into_iter().collect::<HashSet<_>>(), ids);
    let dlq = kit::read_all(&config, Topic::Dlq, usize::MAX, Duration::from_secs(2));
    assert_eq!(dlq.len(), malformed.len(), "one DLQ record per malformed frame");
    for record in &dlq {
        let rec: ttlc_schemas::DlqRecord =
            serde_json::from_slice(record.payload.as_deref().unwrap()).unwrap();
        assert_eq!(rec.stage, "normalize");
        assert!(!rec.reason.is_empty() && !rec.error.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing() {
    let config = kit::config("norm-kill");
    kit::create_topics(&config, 6).await;
    let (valid, ids) = valid_inputs(20_000);
    kit::produce(&config, Topic::Raw, &valid).await;

    let mut first = spawn_normalize(&config);
    // Kill once it is well into the stream but not done.
    wait_for(
        || unified_ids(&config, 3_000, Duration::from_millis(200)).len() >= 3_000,
        Duration::from_secs(120),
    );
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let before_restart = unified_ids(&config, usize::MAX, Duration::from_secs(1)).len();
    assert!(
        before_restart < ids.len(),
        "the kill landed mid-stream ({before_restart} of {})",
        ids.len()
    );

    let mut second = spawn_normalize(&config);
    let mut seen = HashSet::new();
    wait_for(
        || {
            seen = unified_ids(&config, ids.len() * 2, Duration::from_millis(500))
                .into_iter()
                .collect();
            ids.is_subset(&seen)
        },
        Duration::from_secs(180),
    );
    assert!(terminate(&mut second).success());
    assert_eq!(seen, ids, "every eventId at least once, and nothing else");
}
