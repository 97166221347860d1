//! RuleStore against real PostgreSQL: CRUD with validation and typed errors, the column mapping,
//! and hot reload through LISTEN/NOTIFY.

use ttlc_testkit::pg::PgDb;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use ttlc_rules::{RuleInput, RuleSet, RuleStore, StoreError, spawn_reloader};

fn input(name: &str, stream: Option<&str>) -> RuleInput {
    serde_json::from_value(json!({
        "streamId": stream,
        "name": name,
        "eventType": "GIFT",
        "condition": {">=": [{"var": "payload.coins"}, 100]},
        "action": {"type": "overlay", "template": "{displayName}: {giftName}", "params": {"style": "toast"}},
        "priority": 5,
        "cooldown": 30,
        "meta": {"skipReplay": true, "rateLimit": {"max": 10, "perSeconds": 60}},
        "createdBy": "streamer-1"
    }))
    .expect("rule JSON")
}

#[tokio::test]
async fn crud_with_validation_and_typed_errors() {
    let db = PgDb::create().await;
    let store = RuleStore::new(&db.config()).expect("store");

    let created = store.create(input("big gifts", Some("s1"))).await.expect("created");
    assert!(!created.id.is_empty());
    assert_eq!(
        created.spec,
        input("big gifts", Some("s1")),
        "everything round-trips, meta and cooldown included"
    );
    let row = db
        .client()
        .await
        .query_one("SELECT cooldown_ms, meta FROM rules WHERE id = $1", &[&created.id])
        .await
        .expect("row");
    assert_eq!(row.get::<_, i64>(0), 30_000, "cooldown is stored in milliseconds");
    assert_eq!(row.get::<_, serde_json::Value>(1)["rateLimit"]["max"], 10);

    let global = store.create(input("global", None)).await.expect("global");
    store.create(input("elsewhere", Some("s2"))).await.expect("other stream");
    let for_s1: Vec<String> =
        store.list(Some("s1")).await.expect("list").into_iter().map(|r| r.spec.name).collect();
    assert_eq!(for_s1.len(), 2);
    assert!(for_s1.contains(&"big gifts".to_owned()) && for_s1.contains(&"global".to_owned()));
    assert_eq!(store.list(None).await.expect("all").len(), 3);

    let mut changed = input("renamed", Some("s1"));
    changed.enabled = false;
    changed.created_by = Some("someone-else".into());
    let updated = store.update(&created.id, changed).await.expect("updated");
    assert_eq!(updated.spec.name, "renamed");
    assert!(!updated.spec.enabled);
    assert_eq!(updated.spec.created_by.as_deref(), Some("streamer-1"), "createdBy is kept");
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(store.get(&created.id).await.expect("get").spec.name, "renamed");
    assert_eq!(
        store.load_enabled().await.expect("enabled").len(),
        2,
        "the disabled rule is not loaded"
    );

    let mut bad = input("bad", None);
    bad.condition = json!({"eval": "rm -rf /"});
    match store.create(bad.clone()).await {
        Err(StoreError::Invalid(problems)) => assert_eq!(problems[0].field, "condition/eval"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(store.update(&global.id, bad).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.get("nope").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.update("nope", input("x", None)).await,
        Err(StoreError::NotFound { .. })
    ));
    store.delete(&global.id).await.expect("deleted");
    assert!(matches!(store.delete(&global.id).await, Err(StoreError::NotFound { .. })));
    db.drop_db().await;
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let mut config = ttlc_core::config::Config::default();
    // Nothing listens on port 1.
    config.postgres.url = "postgres://ttlc:ttlc@127.0.0.1:1/ttlc".into();
    config.postgres.connect_timeout_ms = 500;
    let store = RuleStore::new(&config).expect("store");
    let err = store.list(None).await.expect_err("no database");
    assert!(err.is_unavailable(), "{err:?}");
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<Option<Arc<RuleSet>>>,
    want: usize,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        if rx.borrow_and_update().as_ref().is_some_and(|s| s.len() == want) {
            return started.elapsed();
        }
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap_or_else(|_| panic!("rule set never reached {want} rules"))
            .expect("reloader alive");
    }
}

#[tokio::test]
async fn changes_reach_the_reloader_without_restart() {
    let db = PgDb::create().await;
    let store = Arc::new(RuleStore::new(&db.config()).expect("store"));
    store.create(input("first", None)).await.expect("created");
    let stop = CancellationToken::new();
    // A long safety-net interval: only NOTIFY can make this test pass in time.
    let mut rx = spawn_reloader(store.clone(), Duration::from_secs(3_600), stop.clone());
    wait_for(&mut rx, 1).await;

    let second = store.create(input("second", Some("s1"))).await.expect("created");
    let took = wait_for(&mut rx, 2).await;
    assert!(took < Duration::from_secs(2), "insert picked up in {took:?}");
    let mut off = second.spec.clone();
    off.enabled = false;
    store.update(&second.id, off).await.expect("disabled");
    wait_for(&mut rx, 1).await;
    // A write that bypasses the store (psql, a migration) is picked up too: the trigger notifies.
    db.client().await.execute("DELETE FROM rules", &[]).await.expect("delete");
    wait_for(&mut rx, 0).await;
    stop.cancel();
    db.drop_db().await;
}
