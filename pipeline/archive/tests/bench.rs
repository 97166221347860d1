//! Throughput of each archiver against its database's own bulk path, on the same rows, in the
//! same run. Ignored by default (it takes a while and wants `--release`):
//!
//! ```text
//! cargo test --release -p ttlc-archive --test bench -- --ignored --nocapture
//! ```
//!
//! PostgreSQL: `PgArchiver::handle` (Avro decode, binary COPY to staging, insert with
//! ON CONFLICT, users/streams/sessions upserts, commit) vs `psql \copy` of the very rows it stored,
//! exported to a file, into a fresh database with the same schema and indexes.
//! ClickHouse: `ChArchiver::handle` (Avro decode, RowBinary insert) vs `clickhouse-client`
//! inserting the same rows from a TabSeparated file into a fresh database.
//! Numbers are reported in `benches/README.md`.

mod support;

use std::process::Command;
use std::time::Instant;

use support::{ChDb, PgDb, config, records, session};
use ttlc_archive::{ChArchiver, PgArchiver, migrate_clickhouse, migrate_postgres};
use ttlc_core::Stage;

const SESSIONS: usize = 20;
const PER_SESSION: usize = 5_000;
/// The runner batch size used for PostgreSQL (and the first ClickHouse run).
const BATCH: usize = 5_000;
/// A batch size suited to ClickHouse (`runner.batch_size` for the archive-ch process).
const CH_BATCH: usize = 50_000;

fn input() -> Vec<ttlc_core::InputRecord> {
    let mut events = Vec::with_capacity(SESSIONS * PER_SESSION);
    for s in 0..SESSIONS {
        events.extend(session(&format!("room-{}", s % 5), &format!("sess-{s}"), PER_SESSION, 400));
    }
    records(&events)
}

fn run(cmd: &mut Command) -> f64 {
    let started = Instant::now();
    let out = cmd.output().expect("run the bulk tool");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    started.elapsed().as_secs_f64()
}

const PG_COLUMNS: &str = "event_id, stream_id, session_id, event_type, trigger_id, user_id, \
    unique_id, raw_type, source, seq_no, \"timestamp\", ingested_at, event_data";

/// How much of each archiver's time is Avro decoding (shared by both, not the database's work).
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn avro_decode_rate() {
    let input = input();
    let started = Instant::now();
    for r in &input {
        ttlc_schemas::avro::decode_unified(r.payload.as_deref().expect("payload"))
            .expect("decodes");
    }
    let secs = started.elapsed().as_secs_f64();
    println!("avro decode, one thread: {:.0} records/s", input.len() as f64 / secs);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in input.chunks(input.len() / 2) {
            scope.spawn(move || {
                for r in part {
                    ttlc_schemas::avro::decode_unified(r.payload.as_deref().expect("payload"))
                        .expect("decodes");
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!("avro decode, two threads: {:.0} records/s", input.len() as f64 / secs);
}

#[tokio::test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn postgres_archiver_vs_psql_copy() {
    let input = input();
    let n = input.len();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.copy");
    let mut ratios = Vec::new();
    for round in 1..=2 {
        let ours = PgDb::create().await;
        let mut stage = PgArchiver::connect(&config(&ours.url, "http://127.0.0.1:8123/unused"))
            .await
            .expect("connect");
        let started = Instant::now();
        for chunk in input.chunks(BATCH) {
            stage.handle(chunk).await.expect("stored");
        }
        let ours_secs = started.elapsed().as_secs_f64();
        run(Command::new("psql")
            .arg(&ours.url)
            .arg("-qc")
            .arg(format!("\\copy (SELECT {PG_COLUMNS} FROM events) TO '{}'", file.display())));

        let theirs = PgDb::create().await;
        migrate_postgres(&theirs.url).await.expect("migrate");
        let theirs_secs = run(Command::new("psql")
            .arg(&theirs.url)
            .arg("-qc")
            .arg(format!("\\copy events ({PG_COLUMNS}) FROM '{}'", file.display())));
        let stored: i64 = theirs
            .client()
            .await
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(stored as usize, n);
        let (a, b) = (n as f64 / ours_secs, n as f64 / theirs_secs);
        println!(
            "postgres round {round}: archive-pg {a:.0} rows/s, psql \\copy {b:.0} rows/s, ratio {:.2}",
            a / b
        );
        ratios.push(a / b);
        ours.drop_db().await;
        theirs.drop_db().await;
    }
    println!("postgres best ratio {:.2}", ratios.iter().cloned().fold(0.0, f64::max));
}

#[tokio::test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn clickhouse_archiver_vs_clickhouse_client() {
    let input = input();
    let n = input.len();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.tsv");
    let host = support::socket_addr(&ChDb::new().url);
    let client_cmd = || {
        let mut c = Command::new("clickhouse-client");
        c.arg("--host").arg(host.ip().to_string());
        c
    };
    // ClickHouse wants few, large inserts (each creates a part): the runner's batch size matters
    // more here than anywhere else, so both a PostgreSQL-sized and a ClickHouse-sized batch run.
    for (round, batch) in [(1, BATCH), (2, CH_BATCH), (3, BATCH), (4, CH_BATCH)] {
        let ours = ChDb::new();
        let mut stage =
            ChArchiver::connect(&config("postgres://unused@127.0.0.1/unused", &ours.url))
                .await
                .expect("connect");
        let started = Instant::now();
        for chunk in input.chunks(batch) {
            stage.handle(chunk).await.expect("stored");
        }
        let ours_secs = started.elapsed().as_secs_f64();
        let export = client_cmd()
            .arg("--query")
            .arg(format!("SELECT * FROM {}.events FORMAT TabSeparated", ours.name))
            .output()
            .expect("export");
        assert!(export.status.success());
        std::fs::write(&file, &export.stdout).expect("write tsv");

        let theirs = ChDb::new();
        migrate_clickhouse(&theirs.url).await.expect("migrate");
        let theirs_secs = run(client_cmd()
            .arg("--query")
            .arg(format!("INSERT INTO {}.events FORMAT TabSeparated", theirs.name))
            .stdin(std::fs::File::open(&file).expect("open tsv")));
        assert_eq!(theirs.count("SELECT count() FROM events").await as usize, n);
        let (a, b) = (n as f64 / ours_secs, n as f64 / theirs_secs);
        println!(
            "clickhouse round {round} (batch {batch}): archive-ch {a:.0} rows/s, \
             clickhouse-client TSV {b:.0} rows/s, ratio {:.2}",
            a / b
        );
        ours.drop_db().await;
        theirs.drop_db().await;
    }
}
