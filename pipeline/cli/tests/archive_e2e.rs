//! `ttlc archive-pg` as a process against the real broker and PostgreSQL: SIGKILL mid-stream and
//! a restart store every event exactly once (at-least-once delivery + idempotent sink).

// A failing unwrap is a failing test: that is what tests are for.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use ttlc_core::config::Config;
use ttlc_testkit as kit;
use ttlc_testkit::pg::PgDb;
use ttlc_topics::Topic;

/// Kills the stage process if the test panics, so a failed test leaves nothing running.
struct Stage(Child);

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_archive_pg(config: &Config, db: &PgDb) -> Stage {
    Stage(
        Command::new(env!("CARGO_BIN_EXE_ttlc"))
            .arg("archive-pg")
            .env("TTLC_BROKERS", &config.kafka.brokers)
            .env("TTLC_TOPIC_PREFIX", &config.kafka.topic_prefix)
            .env("TTLC_DATABASE_URL", &db.url)
            .env("TTLC__RUNNER__GROUP_PREFIX", &config.runner.group_prefix)
            .env("TTLC__RUNNER__BATCH_SIZE", "400")
            .env("TTLC__LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ttlc archive-pg"),
    )
}

/// `n` distinct UnifiedEvents (normalized golden fixtures with fresh seqNos), Avro-encoded.
fn events(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/raw"));
    let mut templates: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("replay"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    templates.sort_by_key(|v| v.to_string());
    (0..n)
        .map(|i| {
            let mut frame = templates[i % templates.len()].clone();
            frame["seqNo"] = Value::from(20_000_000 + i as i64);
            let event =
                ttlc_normalize::normalize_bytes(&serde_json::to_vec(&frame).unwrap()).unwrap();
            (event.stream_id.clone().into_bytes(), ttlc_schemas::encode_unified(&event).unwrap())
        })
        .collect()
}

async fn count(db: &PgDb) -> i64 {
    db.client().await.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_stores_exactly_n() {
    const N: usize = 8_000;
    let db = PgDb::create().await;
    let config = kit::config("arch-kill");
    kit::create_topics(&config, 4).await;
    kit::produce(&config, Topic::Unified, &events(N)).await;

    let mut first = spawn_archive_pg(&config, &db);
    let start = Instant::now();
    while count(&db).await < 1_000 {
        assert!(start.elapsed() < Duration::from_secs(120), "archive-pg never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.0.kill().unwrap(); // SIGKILL, mid-stream
    first.0.wait().unwrap();
    let at_kill = count(&db).await;
    assert!(at_kill < N as i64, "the kill landed mid-stream ({at_kill} of {N})");

    let second = spawn_archive_pg(&config, &db);
    let start = Instant::now();
    while count(&db).await < N as i64 {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "only {} of {N} stored",
            count(&db).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let re-delivered batches land: the count must stay exactly N.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&db).await, N as i64, "every event exactly once");
    let users: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM events e LEFT JOIN users u USING (user_id) WHERE u.user_id IS NULL AND e.user_id <> '0'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "every event's user is recorded");
    drop(second);
    db.drop_db().await;
}
