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

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{ChDb, PgDb, config, records, session};
use ttlc_archive::{ChArchiver, PgArchiver, migrate_clickhouse, migrate_postgres};
use ttlc_core::Stage;

const SESSIONS: usize = 20;
const PER_SESSION: usize = 5_000;
/// The batch size used for PostgreSQL (and ClickHouse's contrast run).
const BATCH: usize = 5_000;
/// archive-ch's default batch (`clickhouse.batch_size`).
const CH_BATCH: usize = 50_000;
/// Measured pairs per store; the order inside a pair alternates.
const ROUNDS: usize = 6;

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

/// How much of each archiver's time is Avro decoding (shared by both, not the database's work):
/// the direct decoder the stages use, and apache-avro's `Value` path it replaced, same records.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn avro_decode_rate() {
    use ttlc_schemas::avro::reference;
    type Decode = fn(&[u8]) -> Result<ttlc_schemas::UnifiedEvent, ttlc_schemas::CodecError>;
    let input = input();
    let decoders: [(&str, Decode); 2] = [
        ("direct", ttlc_schemas::avro::decode_unified),
        ("apache-avro Value", reference::decode_unified),
    ];
    for (name, decode) in decoders {
        let started = Instant::now();
        for r in &input {
            decode(r.payload.as_deref().expect("payload")).expect("decodes");
        }
        let secs = started.elapsed().as_secs_f64();
        println!("avro decode ({name}), one thread: {:.0} records/s", input.len() as f64 / secs);
    }
}

/// Lets the disk settle: both sides write files (parts, WAL), and dirty pages left by one side
/// would otherwise be flushed on the other side's time.
fn settle() {
    run(&mut Command::new("sync"));
    std::thread::sleep(Duration::from_millis(500));
}

/// Runs `ours` and `theirs` (each returning its seconds) `ROUNDS` times, alternating which goes
/// first so neither always meets the other's leftovers (background merges, writeback, caches).
/// Prints every ratio and returns the median.
async fn compare<A, B, FA, FB>(store: &str, n: usize, mut ours: A, mut theirs: B) -> f64
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: Future<Output = f64>,
    FB: Future<Output = f64>,
{
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (ours_secs, theirs_secs) = if round % 2 == 1 {
            settle();
            let a = ours().await;
            settle();
            (a, theirs().await)
        } else {
            settle();
            let b = theirs().await;
            settle();
            (ours().await, b)
        };
        let (a, b) = (n as f64 / ours_secs, n as f64 / theirs_secs);
        println!(
            "{store} round {round}: archiver {a:.0} rows/s, bulk {b:.0} rows/s, ratio {:.2}",
            a / b
        );
        ratios.push(a / b);
    }
    ratios.sort_by(f64::total_cmp);
    let median = (ratios[ROUNDS / 2 - 1] + ratios[ROUNDS / 2]) / 2.0;
    println!(
        "{store}: median ratio {median:.2} (min {:.2}, max {:.2}) over {ROUNDS} rounds",
        ratios[0],
        ratios[ROUNDS - 1]
    );
    median
}

#[tokio::test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn postgres_archiver_vs_psql_copy() {
    let input = input();
    let n = input.len();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.copy");

    // The bulk side loads exactly the rows the archiver stored: export them once.
    let first = PgDb::create().await;
    archive_pg(&first.url, &input).await;
    run(Command::new("psql")
        .arg(&first.url)
        .arg("-qc")
        .arg(format!("\\copy (SELECT {PG_COLUMNS} FROM events) TO '{}'", file.display())));
    first.drop_db().await;

    let (input, file) = (&input, &file);
    let ours = move || async move {
        let db = PgDb::create().await;
        let secs = archive_pg(&db.url, input).await;
        db.drop_db().await;
        secs
    };
    let theirs = move || async move {
        let db = PgDb::create().await;
        migrate_postgres(&db.url).await.expect("migrate");
        let secs = run(Command::new("psql")
            .arg(&db.url)
            .arg("-qc")
            .arg(format!("\\copy events ({PG_COLUMNS}) FROM '{}'", file.display())));
        let stored: i64 = db
            .client()
            .await
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(stored as usize, n);
        db.drop_db().await;
        secs
    };
    compare("postgres (archive-pg vs psql \\copy)", n, ours, theirs).await;
}

/// archive-pg's `handle` over `input` in batches of [`BATCH`] into a fresh migrated database;
/// returns the seconds spent.
async fn archive_pg(url: &str, input: &[ttlc_core::InputRecord]) -> f64 {
    let mut stage =
        PgArchiver::connect(&config(url, "http://127.0.0.1:8123/unused")).await.expect("connect");
    let started = Instant::now();
    for chunk in input.chunks(BATCH) {
        stage.handle(chunk).await.expect("stored");
    }
    started.elapsed().as_secs_f64()
}

/// archive-ch's `handle` over `input` in batches of `batch` into a fresh database; returns the
/// seconds spent and the database (for export or drop).
async fn archive_ch(input: &[ttlc_core::InputRecord], batch: usize) -> (f64, ChDb) {
    let db = ChDb::new();
    let mut stage = ChArchiver::connect(&config("postgres://unused@127.0.0.1/unused", &db.url))
        .await
        .expect("connect");
    let started = Instant::now();
    for chunk in input.chunks(batch) {
        stage.handle(chunk).await.expect("stored");
    }
    (started.elapsed().as_secs_f64(), db)
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

    // The bulk side loads exactly the rows the archiver stored: export them once.
    let (_, first) = archive_ch(&input, CH_BATCH).await;
    let export = client_cmd()
        .arg("--query")
        .arg(format!("SELECT * FROM {}.events FORMAT TabSeparated", first.name))
        .output()
        .expect("export");
    assert!(export.status.success());
    std::fs::write(&file, &export.stdout).expect("write tsv");
    first.drop_db().await;

    // Contrast, not part of the ratio: PostgreSQL-sized batches, where every INSERT's part
    // dominates (why `clickhouse.batch_size` defaults to 50,000).
    settle();
    let (secs, db) = archive_ch(&input, BATCH).await;
    println!("clickhouse, batches of {BATCH}: archive-ch {:.0} rows/s", n as f64 / secs);
    db.drop_db().await;

    let (input, file, client_cmd) = (&input, &file, &client_cmd);
    let ours = move || async move {
        let (secs, db) = archive_ch(input, CH_BATCH).await;
        db.drop_db().await;
        secs
    };
    let theirs = move || async move {
        let db = ChDb::new();
        migrate_clickhouse(&db.url).await.expect("migrate");
        let secs = run(client_cmd()
            .arg("--query")
            .arg(format!("INSERT INTO {}.events FORMAT TabSeparated", db.name))
            .stdin(std::fs::File::open(file).expect("open tsv")));
        assert_eq!(db.count("SELECT count() FROM events").await as usize, n);
        db.drop_db().await;
        secs
    };
    compare(
        &format!("clickhouse (archive-ch, batches of {CH_BATCH}, vs clickhouse-client TSV)"),
        n,
        ours,
        theirs,
    )
    .await;
}
