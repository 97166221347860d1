//! The runner against the real broker: outputs and DLQ records arrive, per-key order holds,
//! retryable failures are retried, and offsets committed at shutdown are not re-processed.

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_core::{Disposition, InputRecord, Output, Rejection, Stage, StageError};
use ttlc_testkit as kit;
use ttlc_topics::Topic;

/// Copies `raw` to `unified`, rejects payloads starting with `bad`, and fails the first
/// `fail_first` calls with a retryable error.
#[derive(Debug, Clone)]
struct Echo {
    calls: Arc<AtomicUsize>,
    fail_first: usize,
    /// Time each batch takes, so a test can stop the stage mid-stream.
    delay: Duration,
}

impl Stage for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Raw]
    }
    async fn handle(&mut self, batch: &[InputRecord]) -> Result<Vec<Disposition>, StageError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(StageError::retryable("simulated outage", "database unreachable"));
        }
        tokio::time::sleep(self.delay).await;
        Ok(batch
            .iter()
            .map(|r| {
                let payload = r.payload.clone().unwrap_or_default();
                if payload.starts_with(b"bad") {
                    Disposition::Reject(Rejection::new("test_bad", "payload starts with bad"))
                } else {
                    Disposition::Emit(vec![Output {
                        topic: Topic::Unified,
                        key: r.key.clone().unwrap_or_default(),
                        payload,
                        headers: vec![("content-type".into(), b"text/plain".to_vec())],
                    }])
                }
            })
            .collect())
    }
}

fn records(n: usize, keys: usize, bad_every: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let key = format!("stream-{}", i % keys);
            let payload = if bad_every > 0 && i % bad_every == 0 {
                format!("bad-{i}")
            } else {
                format!("{key}:{i}")
            };
            (key.into_bytes(), payload.into_bytes())
        })
        .collect()
}

async fn run_until(config: &Config, stage: Echo, done: impl Fn() -> bool) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let config = config.clone();
        let shutdown = shutdown.clone();
        async move { ttlc_core::runner::run(stage, &config, shutdown).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    task.await.expect("runner task").expect("runner result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_dlq_and_per_key_order() {
    let config = kit::config("runner");
    kit::create_topics(&config, 4).await;
    let input = records(3_000, 7, 100);
    kit::produce(&config, Topic::Raw, &input).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let stage = Echo { calls: calls.clone(), fail_first: 2, delay: Duration::ZERO };
    let cfg = config.clone();
    run_until(&config, stage, move || {
        kit::read_all(&cfg, Topic::Unified, 2_970, Duration::from_millis(300)).len() >= 2_970
    })
    .await;

    let out = kit::read_all(&config, Topic::Unified, 2_970, Duration::from_secs(2));
    let dlq = kit::read_all(&config, Topic::Dlq, 30, Duration::from_secs(2));
    assert_eq!(dlq.len(), 30, "one DLQ record per bad input");
    let unique = kit::count_by(&out, |r| r.payload.clone());
    assert_eq!(unique.len(), 2_970, "every good input produced");
    assert!(calls.load(Ordering::SeqCst) > 2, "retryable failures were retried");

    // Per-key order: within each key the sequence numbers only grow.
    let mut last: std::collections::HashMap<Vec<u8>, i64> = Default::default();
    for r in &out {
        let text = String::from_utf8(r.payload.clone().unwrap()).unwrap();
        let seq: i64 = text.rsplit(':').next().unwrap().parse().unwrap();
        let prev = last.insert(r.key.clone().unwrap(), seq).unwrap_or(-1);
        assert!(seq > prev, "order broken for {text}");
    }

    let rec: ttlc_schemas::DlqRecord =
        serde_json::from_slice(dlq[0].payload.as_ref().unwrap()).unwrap();
    assert_eq!(rec.stage, "echo");
    assert_eq!(rec.reason, "test_bad");
    assert!(rec.payload.starts_with("bad-"));
    assert_eq!(rec.topic, format!("{}raw", config.kafka.topic_prefix));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_not_reprocessed_after_restart() {
    let config = kit::config("restart");
    kit::create_topics(&config, 3).await;
    kit::produce(&config, Topic::Raw, &records(500, 5, 0)).await;
    let stage = Echo { calls: Arc::new(AtomicUsize::new(0)), fail_first: 0, delay: Duration::ZERO };
    let cfg = config.clone();
    run_until(&config, stage.clone(), move || {
        kit::read_all(&cfg, Topic::Unified, 500, Duration::from_millis(300)).len() >= 500
    })
    .await;

    // Second run of the same group: only the new records are processed.
    let second: Vec<_> = records(200, 5, 0)
        .into_iter()
        .map(|(k, v)| (k, [b"second-".as_slice(), &v].concat()))
        .collect();
    kit::produce(&config, Topic::Raw, &second).await;
    let cfg = config.clone();
    run_until(&config, stage, move || {
        kit::read_all(&cfg, Topic::Unified, 700, Duration::from_millis(300)).len() >= 700
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = kit::read_all(&config, Topic::Unified, 10_000, Duration::from_secs(2));
    assert_eq!(out.len(), 700, "a clean shutdown commits: nothing is processed twice");
}

/// Tansu 0.6 resumes a fetch that starts mid-batch at the next batch. A stage stopped (or killed)
/// with its committed offset inside a large producer batch must still see the rest of that batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_inside_a_producer_batch_loses_nothing() {
    ttlc_core::telemetry::init_logging(&ttlc_core::config::LogConfig {
        format: "pretty".into(),
        level: std::env::var("TTLC_TEST_LOG").unwrap_or_else(|_| "warn".into()),
    });
    let mut config = kit::config("resume");
    config.runner.batch_size = 700;
    kit::create_topics(&config, 1).await;
    // Large producer batches: a long linger gathers the records into a few big batches.
    let mut producing = config.clone();
    producing.kafka.linger_ms = 200;
    kit::produce(&producing, Topic::Raw, &records(5_000, 3, 0)).await;

    let slow = Echo {
        calls: Arc::new(AtomicUsize::new(0)),
        fail_first: 0,
        delay: Duration::from_millis(300),
    };
    let cfg = config.clone();
    run_until(&config, slow, move || {
        kit::read_all(&cfg, Topic::Unified, 1_400, Duration::from_millis(200)).len() >= 1_400
    })
    .await;
    let first_run = kit::read_all(&config, Topic::Unified, 10_000, Duration::from_secs(1)).len();
    assert!(first_run < 5_000, "stopped mid-stream ({first_run})");

    let stage = Echo { calls: Arc::new(AtomicUsize::new(0)), fail_first: 0, delay: Duration::ZERO };
    let cfg = config.clone();
    run_until(&config, stage, move || {
        let out = kit::read_all(&cfg, Topic::Unified, 10_000, Duration::from_millis(300));
        kit::count_by(&out, |r| r.payload.clone()).len() >= 5_000
    })
    .await;
    let out = kit::read_all(&config, Topic::Unified, 10_000, Duration::from_secs(2));
    assert_eq!(
        kit::count_by(&out, |r| r.payload.clone()).len(),
        5_000,
        "every record at least once"
    );
}
