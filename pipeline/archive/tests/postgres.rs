//! archive-pg against a real PostgreSQL: exact row counts under re-delivery, users/sessions
//! bookkeeping, seqNo order, outages through a proxy we cut, bad records bisected to the DLQ, and
//! the application role's missing UPDATE/DELETE rights.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use support::{PgDb, TcpProxy, config, records, session};
use ttlc_archive::{PgArchiver, migrate_postgres};
use ttlc_core::{Disposition, Stage};
use ttlc_schemas::event::{ChatPayload, Payload};

async fn count(db: &PgDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn archiver(db: &PgDb) -> PgArchiver {
    PgArchiver::connect(&config(&db.url, "http://127.0.0.1:8123/unused")).await.expect("connect")
}

fn assert_all_stored(dispositions: &[Disposition]) {
    for d in dispositions {
        assert!(matches!(d, Disposition::Emit(out) if out.is_empty()), "unexpected {d:?}");
    }
}

#[tokio::test]
async fn n_events_give_n_rows_and_redelivery_adds_none() {
    let db = PgDb::create().await;
    let mut stage = archiver(&db).await;
    let mut events = session("room-a", "sess-a1", 1_200, 37);
    events.extend(session("room-b", "sess-b1", 800, 11));
    let input = records(&events);
    for chunk in input.chunks(500) {
        let out = stage.handle(chunk).await.expect("stored");
        assert_eq!(out.len(), chunk.len());
        assert_all_stored(&out);
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 2_000);
    let users_before = count(&db, "SELECT sum(event_count)::int8 FROM users").await;

    // The runner re-delivers after a crash: different batch boundaries, everything again.
    for chunk in input.chunks(333) {
        assert_all_stored(&stage.handle(chunk).await.expect("stored again"));
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 2_000);
    assert_eq!(count(&db, "SELECT sum(event_count)::int8 FROM users").await, users_before);
    assert_eq!(count(&db, "SELECT sum(event_count)::int8 FROM sessions").await, 2_000);
    assert_eq!(count(&db, "SELECT sum(event_count)::int8 FROM streams").await, 2_000);

    // Lifecycle: CONNECTED opened each session, DISCONNECTED closed it.
    let client = db.client().await;
    let rows = client
        .query("SELECT session_id, stream_id, started_at, ended_at, end_reason FROM sessions ORDER BY 1", &[])
        .await
        .expect("sessions");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let id: String = row.get(0);
        let mine: Vec<_> = events.iter().filter(|e| e.session_id == id).collect();
        let started: DateTime<Utc> = row.get(2);
        let ended: Option<DateTime<Utc>> = row.get(3);
        assert_eq!(started, mine.first().expect("events").timestamp);
        assert_eq!(ended, Some(mine.last().expect("events").timestamp));
        assert_eq!(row.get::<_, Option<String>>(4).as_deref(), Some("stream ended"));
    }
    db.drop_db().await;
}

#[tokio::test]
async fn users_event_count_and_last_seen_are_exact() {
    let db = PgDb::create().await;
    let mut stage = archiver(&db).await;
    let mut events = session("room-u", "sess-u1", 600, 23);
    events.extend(session("room-v", "sess-v1", 400, 9));
    let input = records(&events);
    // Deliver out of order and with overlaps: the counts must not care.
    let mut chunks: Vec<_> = input.chunks(128).collect();
    chunks.reverse();
    for chunk in &chunks {
        stage.handle(chunk).await.expect("stored");
    }
    stage.handle(&input[100..700]).await.expect("overlap stored");

    let mut expected: HashMap<String, (i64, DateTime<Utc>, String)> = HashMap::new();
    for e in events.iter().filter(|e| e.user.user_id != "0") {
        let entry =
            expected.entry(e.user.user_id.clone()).or_insert((0, e.timestamp, String::new()));
        entry.0 += 1;
        if e.timestamp >= entry.1 {
            entry.1 = e.timestamp;
            entry.2 = e.user.unique_id.clone();
        }
    }
    let rows = db
        .client()
        .await
        .query("SELECT user_id, event_count, last_seen, unique_id FROM users", &[])
        .await
        .expect("users");
    assert_eq!(rows.len(), expected.len(), "one row per real user, none for the system user");
    for row in rows {
        let id: String = row.get(0);
        let (n, last, unique) = &expected[&id];
        assert_eq!(row.get::<_, i64>(1), *n, "event_count of {id}");
        assert_eq!(row.get::<_, DateTime<Utc>>(2), *last, "last_seen of {id}");
        assert_eq!(&row.get::<_, String>(3), unique);
    }
    db.drop_db().await;
}

#[tokio::test]
async fn a_sessions_events_come_back_in_seq_no_order() {
    let db = PgDb::create().await;
    let mut stage = archiver(&db).await;
    let events = session("room-o", "sess-o1", 500, 5);
    let input = records(&events);
    // Reverse batch order so insertion order differs from seqNo order.
    for chunk in input.rchunks(64) {
        stage.handle(chunk).await.expect("stored");
    }
    let rows = db
        .client()
        .await
        .query(
            "SELECT seq_no, event_data FROM events WHERE session_id = $1 ORDER BY seq_no",
            &[&"sess-o1"],
        )
        .await
        .expect("events");
    let seqs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(seqs, (0..500).collect::<Vec<i64>>());
    // event_data is the full event: it reads back as the same UnifiedEvent.
    let stored: serde_json::Value = rows[7].get(1);
    let back: ttlc_schemas::UnifiedEvent = serde_json::from_value(stored).expect("a UnifiedEvent");
    assert_eq!(back, events[7]);
    db.drop_db().await;
}

#[tokio::test]
async fn an_outage_is_retryable_and_the_retry_stores_exactly_n() {
    let db = PgDb::create().await;
    migrate_postgres(&db.url).await.expect("migrate");
    let proxy = TcpProxy::start(support::socket_addr(&db.url)).await;
    let mut cfg = config(&proxy.url_via(&db.url), "http://127.0.0.1:8123/unused");
    cfg.postgres.migrate_on_start = false;
    let mut stage = PgArchiver::connect(&cfg).await.expect("connect through the proxy");

    let events = session("room-x", "sess-x1", 3_000, 50);
    let input = records(&events);
    stage.handle(&input[..1_000]).await.expect("first batch before the outage");

    proxy.cut().await;
    let started = std::time::Instant::now();
    let mut failures = 0;
    // Several attempts during a ~3 s outage, like the runner's backoff would make.
    while started.elapsed() < Duration::from_secs(3) {
        let err = stage.handle(&input[1_000..]).await.expect_err("database is unreachable");
        assert!(err.is_retryable(), "an outage must be retryable: {err}");
        failures += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(failures >= 2);
    proxy.restore();
    assert_all_stored(&stage.handle(&input[1_000..]).await.expect("stored after the outage"));
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 3_000);

    // A cut in the middle of a batch: whatever the stage saw, retrying converges on exactly N.
    let more = session("room-x", "sess-x2", 6_000, 50);
    let more_input = records(&more);
    let cutter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        proxy.cut().await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        proxy.restore();
        proxy
    });
    let mut attempts = 0;
    loop {
        attempts += 1;
        match stage.handle(&more_input).await {
            Ok(out) => {
                assert_all_stored(&out);
                break;
            }
            Err(err) => {
                assert!(err.is_retryable(), "{err}");
                assert!(attempts < 100, "never recovered");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let _proxy = cutter.await.expect("cutter");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 9_000);
    assert_eq!(count(&db, "SELECT sum(event_count)::int8 FROM sessions").await, 9_000);
    db.drop_db().await;
}

#[tokio::test]
async fn records_postgres_refuses_are_bisected_out_to_the_dlq() {
    let db = PgDb::create().await;
    let mut stage = archiver(&db).await;
    let mut events = session("room-n", "sess-n1", 300, 7);
    // PostgreSQL text and jsonb cannot hold U+0000: these two chats can never be stored.
    for i in [40, 220] {
        events[i].payload = Some(Payload::Chat(ChatPayload {
            message: "nul\u{0}byte".into(),
            ..Default::default()
        }));
    }
    let mut input = records(&events);
    input[100].payload = Some(b"not avro".to_vec());
    let out = stage.handle(&input).await.expect("batch handled");
    for (i, d) in out.iter().enumerate() {
        match (i, d) {
            (40 | 220, Disposition::Reject(r)) => {
                assert_eq!(r.reason, "store_rejected");
                assert_eq!(r.event_id.as_deref(), Some(events[i].event_id.as_str()));
            }
            (100, Disposition::Reject(r)) => assert_eq!(r.reason, "undecodable"),
            (40 | 220 | 100, other) => panic!("record {i} should be rejected, got {other:?}"),
            (_, Disposition::Emit(o)) => assert!(o.is_empty()),
            (_, other) => panic!("record {i} should be stored, got {other:?}"),
        }
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 297);
    db.drop_db().await;
}

#[tokio::test]
async fn the_application_role_cannot_update_or_delete_events() {
    let db = PgDb::create().await;
    let mut stage = archiver(&db).await;
    stage.handle(&records(&session("room-r", "sess-r1", 10, 3))).await.expect("stored");

    let client = db.client().await;
    client.batch_execute("SET ROLE ttlc_app").await.expect("set role");
    for sql in ["UPDATE events SET user_id = 'x'", "DELETE FROM events", "TRUNCATE events"] {
        let err = client.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}"
        );
    }
    assert_eq!(count_as(&client, "SELECT count(*) FROM events").await, 10);

    // Retention and erasure run as the maintenance role, which may delete.
    client.batch_execute("RESET ROLE; SET ROLE ttlc_maint; BEGIN").await.expect("maint");
    let deleted =
        client.execute("DELETE FROM events WHERE seq_no = 0", &[]).await.expect("maint may delete");
    assert_eq!(deleted, 1);
    client.batch_execute("ROLLBACK").await.expect("rollback");
    db.drop_db().await;
}

async fn count_as(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let db = PgDb::create().await;
    let runs = futures::future::join_all((0..4).map(|_| migrate_postgres(&db.url))).await;
    let mut applied_total = 0;
    for run in runs {
        applied_total += run.expect("migration run").applied.len();
    }
    // Every file under migrations/postgres is one version, numbered from 1.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    let files = std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql")))
        .count();
    assert_eq!(applied_total, files, "each migration applied exactly once across concurrent runs");
    let again = migrate_postgres(&db.url).await.expect("again");
    assert!(again.applied.is_empty());
    assert_eq!(again.already_applied, (1..=files as i32).collect::<Vec<_>>());
    assert_eq!(count(&db, "SELECT count(*) FROM schema_migrations").await, files as i64);
    db.drop_db().await;
}

/// The fast path (COPY into events, folds computed in Rust) and the staging path (ON CONFLICT,
/// folds in SQL) must leave users, streams and sessions identical.
#[tokio::test]
async fn fast_and_staging_paths_fold_identically() {
    let (fast, staged) = (PgDb::create().await, PgDb::create().await);
    let mut events = session("room-f", "sess-f1", 900, 31);
    events.extend(session("room-f", "sess-f2", 300, 17));
    events.extend(session("room-g", "sess-g1", 300, 5));
    let input = records(&events);
    let mut a = archiver(&fast).await;
    a.handle(&input).await.expect("fast path");
    let mut b = archiver(&staged).await;
    // One event stored first makes the whole batch conflict, so it takes the staging path.
    b.handle(&input[500..501]).await.expect("one event");
    b.handle(&input).await.expect("staging path");
    for sql in [
        "SELECT user_id, unique_id, display_name, avatar_url, first_seen, last_seen, event_count \
         FROM users ORDER BY user_id",
        "SELECT stream_id, first_seen, last_seen, last_session_id, event_count FROM streams \
         ORDER BY stream_id",
        "SELECT session_id, stream_id, source, started_at, ended_at, end_reason, first_event_at, \
         last_event_at, event_count FROM sessions ORDER BY session_id",
    ] {
        let wrap = format!("SELECT coalesce(json_agg(t)::text, '') FROM ({sql}) t");
        let left: String = fast.client().await.query_one(&wrap, &[]).await.expect("fast").get(0);
        let right: String =
            staged.client().await.query_one(&wrap, &[]).await.expect("staged").get(0);
        assert!(!left.is_empty());
        assert_eq!(left, right, "{sql}");
    }
    fast.drop_db().await;
    staged.drop_db().await;
}
