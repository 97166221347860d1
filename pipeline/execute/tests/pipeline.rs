//! End to end on the real broker and PostgreSQL: unified events → rules stage → actions →
//! execute stage → a webhook receiver on 127.0.0.1; re-delivery never re-fires; a failing target
//! ends in the DLQ with the ActionRequest.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use support::{PgDb, Receiver, SECRET, signature_ok, webhook};
use tokio_util::sync::CancellationToken;
use ttlc_core::config::Config;
use ttlc_schemas::event::{ChatPayload, GiftPayload};
use ttlc_schemas::{
    DlqRecord, Payload, PayloadEncoding, Source, UnifiedEvent, User, decode_action, encode_action,
    encode_unified,
};
use ttlc_testkit as kit;
use ttlc_topics::Topic;

/// A broker config with a fresh prefix, the test database, fast retries and the webhook secret.
fn config(db: &PgDb, tag: &str) -> Config {
    let mut c = kit::config(tag);
    c.postgres = db.config().postgres;
    c.execute.webhook_allow_http_loopback = true;
    c.execute.retry_initial_ms = 50;
    c.execute.retry_max_ms = 200;
    c.execute.retry_max_attempts = 3;
    c.rules.reload_interval_ms = 60_000;
    c.secrets =
        Config::load_with(None, |name| (name == "TTLC_WEBHOOK_SECRET").then(|| SECRET.to_owned()))
            .expect("config")
            .secrets;
    c
}

fn event(stream: &str, seq: i64, user: &str, payload: Payload) -> UnifiedEvent {
    let event_type = payload.event_type();
    UnifiedEvent {
        schema_version: "1".into(),
        event_id: hex::encode(Sha256::digest(format!(
            "{stream}:sess-{stream}:{seq}:Webcast{event_type}"
        ))),
        event_type,
        trigger_id: event_type.trigger_id(),
        stream_id: stream.into(),
        session_id: format!("sess-{stream}"),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).single().expect("time")
            + chrono::Duration::seconds(seq),
        ingested_at: None,
        source: Source::Live,
        seq_no: Some(seq),
        user: User { user_id: user.into(), unique_id: format!("viewer{user}"), ..User::default() },
        payload: Some(payload),
    }
}

fn gift(coins: i64, count: i64, streak: Option<bool>) -> Payload {
    Payload::Gift(GiftPayload {
        gift_id: 6_000,
        gift_name: "Lion".into(),
        gift_count: count,
        coins,
        is_gift_streak: streak.map(|_| true),
        streak_active: streak.map(|end| !end),
        streak_end: streak,
        ..GiftPayload::default()
    })
}

/// Per stream: a 500-coin gift, a streak of three frames (150, 300 then the final 450), a
/// 50-coin gift and a chat message. Matching (coins ≥ 100, final frames only): 500 and 450.
fn events(stream: &str) -> Vec<UnifiedEvent> {
    vec![
        event(stream, 1, "1", gift(500, 1, None)),
        event(stream, 2, "2", gift(150, 1, Some(false))),
        event(stream, 3, "2", gift(300, 2, Some(false))),
        event(stream, 4, "2", gift(450, 3, Some(true))),
        event(stream, 5, "3", gift(50, 1, None)),
        event(
            stream,
            6,
            "4",
            Payload::Chat(ChatPayload { message: "100 coins!".into(), ..Default::default() }),
        ),
    ]
}

async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn_execute(
    c: &Config,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let (c, stop) = (c.clone(), stop.clone());
    tokio::spawn(async move { ttlc_execute::run_execute(&c, stop).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gift_rule_fires_webhook_exactly_once_per_final_gift() {
    let db = PgDb::create().await;
    let receiver = Receiver::start(200).await;
    let c = config(&db, "rules-exec");
    kit::create_topics(&c, 3).await;
    let store = ttlc_rules::RuleStore::new(&c).expect("store");
    let rule = store
        .create(serde_json::from_value(json!({
            "name": "big gifts", "eventType": "GIFT",
            "condition": {">=": [{"var": "payload.coins"}, 100]},
            "action": {"type": "webhook", "template": "{username} sent {giftCount}x {giftName} ({coins})",
                       "params": {"url": receiver.url()}}
        })).expect("rule JSON"))
        .await
        .expect("rule stored");

    let all: Vec<UnifiedEvent> = ["s1", "s2", "s3"].iter().flat_map(|s| events(s)).collect();
    let records: Vec<_> = all
        .iter()
        .map(|e| (e.stream_id.clone().into_bytes(), encode_unified(e).expect("encodes")))
        .collect();
    kit::produce(&c, Topic::Unified, &records).await;

    let stop = CancellationToken::new();
    let rules = tokio::spawn({
        let (c, stop) = (c.clone(), stop.clone());
        async move { ttlc_rules::run_rules(&c, stop).await }
    });
    let exec = spawn_execute(&c, &stop);
    until("6 webhooks", 60, || receiver.hits().len() >= 6).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    rules.await.expect("rules task").expect("rules stage");
    exec.await.expect("execute task").expect("execute stage");

    let hits = receiver.hits();
    assert_eq!(hits.len(), 6, "two matching final gifts per stream, streak frames not counted");
    assert!(hits.iter().all(signature_ok), "every request is signed");
    let texts: HashSet<String> = hits
        .iter()
        .map(|h| {
            serde_json::from_slice::<serde_json::Value>(&h.body).expect("JSON")["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        texts,
        HashSet::from([
            "viewer1 sent 1x Lion (500)".to_owned(),
            "viewer2 sent 3x Lion (450)".to_owned()
        ])
    );
    let expected: HashSet<String> = all
        .iter()
        .filter(|e| {
            e.is_final_gift_frame()
                && matches!(&e.payload, Some(Payload::Gift(g)) if g.coins >= 100)
        })
        .map(|e| ttlc_rules::action_id(&rule.id, &e.event_id))
        .collect();
    let fired: HashSet<String> = hits.iter().filter_map(|h| h.action_id.clone()).collect();
    assert_eq!(fired, expected);
    let client = db.client().await;
    let rows = client
        .query("SELECT action_id, count(*) FROM actions_log WHERE status = 'success' GROUP BY action_id", &[])
        .await
        .expect("query");
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.get::<_, i64>(1) == 1), "one success row per action");

    // Re-delivery: every ActionRequest produced again, and a new consumer group that re-reads
    // the whole topic from the start. Nothing fires twice.
    let actions = kit::read_all(&c, Topic::Actions, 6, Duration::from_secs(3));
    assert_eq!(actions.len(), 6, "one ActionRequest per match");
    let again: Vec<_> = actions
        .iter()
        .map(|r| (r.key.clone().unwrap_or_default(), r.payload.clone().unwrap_or_default()))
        .collect();
    kit::produce(&c, Topic::Actions, &again).await;
    let mut fresh_group = c.clone();
    fresh_group.runner.group_prefix = format!("{}again-", c.runner.group_prefix);
    for cfg in [&c, &fresh_group] {
        let stop = CancellationToken::new();
        let exec = spawn_execute(cfg, &stop);
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.cancel();
        exec.await.expect("execute task").expect("execute stage");
    }
    assert_eq!(receiver.hits().len(), 6, "re-delivered actions did not fire again");
    let total: i64 =
        client.query_one("SELECT count(*) FROM actions_log", &[]).await.expect("count").get(0);
    assert_eq!(total, 6, "and wrote no new rows");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_webhook_lands_in_the_dlq_with_the_action_request() {
    let db = PgDb::create().await;
    let receiver = Receiver::start(500).await;
    let c = config(&db, "exec-dlq");
    kit::create_topics(&c, 1).await;
    let action = webhook(7, &receiver.url());
    let bytes = encode_action(&action).expect("encodes");
    kit::produce(&c, Topic::Actions, &[(action.stream_id.clone().into_bytes(), bytes.clone())])
        .await;

    let stop = CancellationToken::new();
    let exec = spawn_execute(&c, &stop);
    let mut dlq = Vec::new();
    until("a DLQ record", 60, || {
        dlq = kit::read_all(&c, Topic::Dlq, 1, Duration::from_millis(200));
        !dlq.is_empty()
    })
    .await;
    stop.cancel();
    exec.await.expect("execute task").expect("execute stage");

    assert_eq!(receiver.hits().len(), 3, "three attempts with backoff before giving up");
    let record: DlqRecord =
        serde_json::from_slice(dlq[0].payload.as_deref().expect("payload")).expect("DLQ JSON");
    assert_eq!((record.stage.as_str(), record.reason.as_str()), ("execute", "retries_exhausted"));
    assert!(record.error.contains("500"), "{}", record.error);
    assert!(!record.error.contains(SECRET));
    assert_eq!(record.payload_encoding, PayloadEncoding::Base64);
    let original =
        base64::engine::general_purpose::STANDARD.decode(&record.payload).expect("base64");
    assert_eq!(original, bytes, "the DLQ carries the ActionRequest bytes");
    assert_eq!(decode_action(&original).expect("decodes").action_id, action.action_id);
    let rows = support::log_rows(&db, &action.action_id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "failed");
    db.drop_db().await;
}
