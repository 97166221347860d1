//! archive-ch against a real ClickHouse (the local 18.16 or a current release): the DDL applies
//! twice, columns carry the right values, re-delivery never double counts with FINAL, and an
//! outage is retryable.

mod support;

use std::time::Duration;

use support::{ChDb, TcpProxy, config, records, session};
use ttlc_archive::{ChArchiver, migrate_clickhouse};
use ttlc_core::{Disposition, Stage};
use ttlc_schemas::event::{GiftPayload, Payload};

async fn archiver(db: &ChDb) -> ChArchiver {
    ChArchiver::connect(&config("postgres://unused@127.0.0.1/unused", &db.url))
        .await
        .expect("connect")
}

#[tokio::test]
async fn migrations_apply_once_and_again_without_changes() {
    let db = ChDb::new();
    let first = migrate_clickhouse(&db.url).await.expect("first run");
    assert_eq!(first.applied, vec![1]);
    let second = migrate_clickhouse(&db.url).await.expect("second run");
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, vec![1]);
    db.drop_db().await;
}

#[tokio::test]
async fn n_events_give_n_rows_and_redelivery_never_double_counts() {
    let db = ChDb::new();
    let mut stage = archiver(&db).await;
    let mut events = session("room-a", "sess-a1", 1_500, 40);
    events.extend(session("room-b", "sess-b1", 500, 10));
    let input = records(&events);
    for chunk in input.chunks(400) {
        let out = stage.handle(chunk).await.expect("stored");
        assert_eq!(out.len(), chunk.len());
        assert!(out.iter().all(|d| matches!(d, Disposition::Emit(o) if o.is_empty())));
    }
    assert_eq!(db.count("SELECT count() FROM events FINAL").await, 2_000);
    // Re-delivery with other batch boundaries.
    for chunk in input.chunks(777) {
        stage.handle(chunk).await.expect("stored again");
    }
    // The table itself may hold duplicates until a background merge collapses them (which can
    // happen any time); FINAL reads are exact regardless.
    assert_eq!(db.count("SELECT count() FROM events FINAL").await, 2_000);
    assert_eq!(db.count("SELECT uniqExact(event_id) FROM events").await, 2_000);
    let likes = db
        .count("SELECT toUInt64(sum(like_count)) FROM events FINAL WHERE event_type = 'LIKE'")
        .await;
    let expected: i64 = events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::Like(l)) => Some(l.like_count),
            _ => None,
        })
        .sum();
    assert_eq!(likes, expected as u64);
    // After merges the table itself holds N rows.
    db.client().query("OPTIMIZE TABLE events FINAL").execute().await.expect("optimize");
    assert_eq!(db.count("SELECT count() FROM events").await, 2_000);
    db.drop_db().await;
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct GiftRow {
    event_type: String,
    user_id: String,
    timestamp: u32,
    timestamp_ms: i64,
    seq_no: Option<i64>,
    gift_id: i64,
    gift_name: String,
    gift_count: i64,
    coins: i64,
    diamonds: i64,
    is_final_gift: u8,
    emote_id: String,
}

/// Every column lands where the DDL says: a mismatch between the Rust row and the table would
/// garble these values (RowBinary has no column names).
#[tokio::test]
async fn columns_carry_the_events_values_and_only_final_gift_frames_count() {
    let db = ChDb::new();
    let mut stage = archiver(&db).await;
    let mut events = session("room-g", "sess-g1", 12, 2);
    // Events 1 and 6 are GIFTs (i % 5 == 1): event 6 becomes a running streak frame.
    events[6].payload = Some(Payload::Gift(GiftPayload {
        gift_id: 5655,
        gift_name: "Rose".into(),
        gift_count: 3,
        coins: 3,
        diamond_count: Some(1),
        streak_active: Some(true),
        streak_end: Some(false),
        is_gift_streak: Some(true),
        ..Default::default()
    }));
    stage.handle(&records(&events)).await.expect("stored");
    let rows = db
        .client()
        .query(
            "SELECT event_type, user_id, timestamp, timestamp_ms, seq_no, gift_id, gift_name, \
             gift_count, coins, diamonds, is_final_gift, emote_id \
             FROM events FINAL WHERE event_type = 'GIFT' ORDER BY seq_no",
        )
        .fetch_all::<GiftRow>()
        .await
        .expect("gift rows");
    assert_eq!(rows.len(), 2);
    let streak = &rows[1];
    assert_eq!(streak.seq_no, Some(6));
    assert_eq!(streak.event_type, "GIFT");
    assert_eq!(streak.user_id, events[6].user.user_id);
    assert_eq!(i64::from(streak.timestamp), events[6].timestamp.timestamp());
    assert_eq!(streak.timestamp_ms, events[6].timestamp.timestamp_millis());
    assert_eq!((streak.gift_id, streak.gift_name.as_str()), (5655, "Rose"));
    assert_eq!((streak.gift_count, streak.coins, streak.diamonds), (3, 3, 1));
    assert_eq!(streak.is_final_gift, 0, "a running streak frame does not count");
    assert_eq!(rows[0].is_final_gift, 1, "a non-streak gift counts");
    assert_eq!(streak.emote_id, "");
    let coins =
        db.count("SELECT toUInt64(sum(coins)) FROM events FINAL WHERE is_final_gift = 1").await;
    assert_eq!(coins, 1);
    let viewers = db.count("SELECT toUInt64(max(viewer_count)) FROM events FINAL").await;
    assert_eq!(viewers, 58, "JOIN at seq 8 carries viewerCount 58");
    db.drop_db().await;
}

#[tokio::test]
async fn an_outage_is_retryable_and_the_retry_stores_exactly_n() {
    let db = ChDb::new();
    migrate_clickhouse(&db.url).await.expect("migrate");
    let proxy = TcpProxy::start(support::socket_addr(&db.url)).await;
    let mut cfg = config("postgres://unused@127.0.0.1/unused", &proxy.url_via(&db.url));
    cfg.clickhouse.migrate_on_start = false;
    let mut stage = ChArchiver::connect(&cfg).await.expect("connect");
    let input = records(&session("room-x", "sess-x1", 2_000, 30));
    stage.handle(&input[..500]).await.expect("before the outage");
    proxy.cut().await;
    for _ in 0..3 {
        let err = stage.handle(&input[500..]).await.expect_err("ClickHouse is unreachable");
        assert!(err.is_retryable(), "{err}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    proxy.restore();
    stage.handle(&input[500..]).await.expect("after the outage");
    assert_eq!(db.count("SELECT count() FROM events FINAL").await, 2_000);
    db.drop_db().await;
}
