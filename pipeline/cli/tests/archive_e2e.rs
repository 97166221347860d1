//! `ttlc archive-pg` and `ttlc archive-ch` as processes against the real broker, PostgreSQL and
//! ClickHouse: SIGKILL mid-stream and a restart store every event exactly once (at-least-once
//! delivery + idempotent sink).

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

/// `ttlc <stage>` with the test's broker settings and small batches, so a kill lands mid-stream.
fn spawn(stage: &str, config: &Config, env: &[(&str, &str)]) -> Stage {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ttlc"));
    command
        .arg(stage)
        .env("TTLC_BROKERS", &config.kafka.brokers)
        .env("TTLC_TOPIC_PREFIX", &config.kafka.topic_prefix)
        .env("TTLC__RUNNER__GROUP_PREFIX", &config.runner.group_prefix)
        .env("TTLC__RUNNER__BATCH_SIZE", "400")
        .env("TTLC__LOG__LEVEL", "warn")
        .stdout(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    Stage(command.spawn().unwrap_or_else(|e| panic!("spawn ttlc {stage}: {e}")))
}

fn spawn_archive_pg(config: &Config, db: &PgDb) -> Stage {
    spawn("archive-pg", config, &[("TTLC_DATABASE_URL", &db.url)])
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

/// The ClickHouse server of the local stack (`TTLC_CLICKHOUSE_URL` without its database).
fn ch_server() -> String {
    let url = std::env::var("TTLC_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123/ttlc".into());
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://{}", rest.split('/').next().unwrap())
}

async fn ch_count(client: &clickhouse::Client, sql: &str) -> u64 {
    // Before the stage has created the table, there is nothing yet.
    client.query(sql).fetch_one::<u64>().await.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_ch_sigkill_mid_stream_then_restart_counts_exactly_n() {
    const N: usize = 8_000;
    let database = format!("ttlc_t_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{database}", ch_server());
    let server = clickhouse::Client::default().with_url(ch_server()).with_validation(false);
    let client = server.clone().with_database(&database);
    let config = kit::config("arch-ch-kill");
    kit::create_topics(&config, 4).await;
    kit::produce(&config, Topic::Unified, &events(N)).await;
    let env = [
        ("TTLC_CLICKHOUSE_URL", url.as_str()),
        ("TTLC__CLICKHOUSE__BATCH_SIZE", "400"),
        ("TTLC__CLICKHOUSE__BATCH_TIMEOUT_MS", "50"),
    ];

    let mut first = spawn("archive-ch", &config, &env);
    let start = Instant::now();
    while ch_count(&client, "SELECT count() FROM events").await < 1_000 {
        assert!(start.elapsed() < Duration::from_secs(120), "archive-ch never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.0.kill().unwrap(); // SIGKILL, mid-stream
    first.0.wait().unwrap();
    let at_kill = ch_count(&client, "SELECT count() FROM events").await;
    assert!(at_kill < N as u64, "the kill landed mid-stream ({at_kill} of {N})");

    let second = spawn("archive-ch", &config, &env);
    let start = Instant::now();
    while ch_count(&client, "SELECT uniqExact(event_id) FROM events").await < N as u64 {
        assert!(start.elapsed() < Duration::from_secs(180), "not every event stored in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let re-delivered batches land. Rows written twice (re-delivery after the kill) may exist
    // until a merge, but analytics read with FINAL, which must count each event once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ch_count(&client, "SELECT count() FROM events FINAL").await, N as u64);
    assert_eq!(ch_count(&client, "SELECT uniqExact(event_id) FROM events").await, N as u64);
    let raw = ch_count(&client, "SELECT count() FROM events").await;
    println!("archive-ch: {at_kill} rows at the kill, {raw} rows before merges, {N} with FINAL");
    drop(second);
    server.query(&format!("DROP DATABASE IF EXISTS {database}")).execute().await.unwrap();
}
