//! RulesStage::handle on encoded `unified` records: one ActionRequest per match with the right
//! key, headers and deterministic id; cooldown, rate limit and streak frames respected; bad
//! records rejected; no rules loaded yet is a retryable error.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use ttlc_core::{Disposition, InputRecord, Stage};
use ttlc_rules::{Rule, RuleSet, RulesStage, ValidationOptions, action_id, compile};
use ttlc_schemas::event::GiftPayload;
use ttlc_schemas::{
    ActionType, Payload, Source, UnifiedEvent, User, decode_action, encode_unified,
};
use ttlc_topics::Topic;

fn set(rules: &[(&str, Value)]) -> RuleSet {
    let now = Utc::now();
    RuleSet::new(rules.iter().map(|(id, spec)| {
        let rule = Rule {
            id: (*id).into(),
            spec: serde_json::from_value(spec.clone()).expect("rule"),
            created_at: now,
            updated_at: now,
        };
        compile(rule, &ValidationOptions::default()).expect("compiles")
    }))
}

fn gift_event(
    seq: i64,
    user: &str,
    coins: i64,
    streak_end: Option<bool>,
    secs: i64,
) -> UnifiedEvent {
    UnifiedEvent {
        schema_version: "1".into(),
        event_id: hex::encode(Sha256::digest(format!("s1:sess:{seq}:WebcastGiftMessage"))),
        event_type: ttlc_schemas::EventType::Gift,
        trigger_id: 2,
        stream_id: "s1".into(),
        session_id: "sess".into(),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).single().expect("time")
            + Duration::seconds(secs),
        ingested_at: None,
        source: Source::Live,
        seq_no: Some(seq),
        user: User { user_id: user.into(), unique_id: format!("u{user}"), ..User::default() },
        payload: Some(Payload::Gift(GiftPayload {
            gift_id: 1,
            gift_name: "Lion".into(),
            gift_count: 1,
            coins,
            is_gift_streak: streak_end.map(|_| true),
            streak_end,
            streak_active: streak_end.map(|e| !e),
            ..GiftPayload::default()
        })),
    }
}

fn records(events: &[UnifiedEvent]) -> Vec<InputRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| InputRecord {
            topic: "t.unified".into(),
            partition: 0,
            offset: i as i64,
            key: Some(e.stream_id.clone().into_bytes()),
            payload: Some(encode_unified(e).expect("encodes")),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect()
}

fn emitted(d: &[Disposition]) -> Vec<Vec<ttlc_core::Output>> {
    d.iter()
        .map(|d| match d {
            Disposition::Emit(o) => o.clone(),
            Disposition::Reject(r) => panic!("unexpected rejection {r:?}"),
        })
        .collect()
}

#[tokio::test]
async fn matches_become_action_requests() {
    let rules = set(&[
        (
            "hook",
            json!({"name": "hook", "eventType": "GIFT", "priority": 2,
            "condition": {">=": [{"var": "payload.coins"}, 100]},
            "action": {"type": "webhook", "template": "{username} {coins}", "params": {"url": "https://hooks.example.com/x"}}}),
        ),
        (
            "cool",
            json!({"name": "cool", "eventType": "GIFT", "cooldown": 60, "priority": 1,
            "action": {"type": "moderate", "params": {"kind": "ban"}}}),
        ),
        (
            "rate",
            json!({"name": "rate", "eventType": "GIFT", "meta": {"rateLimit": {"max": 2, "perSeconds": 3600}},
            "action": {"type": "log"}}),
        ),
    ]);
    let (_tx, rx) = watch::channel(Some(Arc::new(rules)));
    let mut stage = RulesStage::new(rx, 1_000);
    assert_eq!(stage.inputs(), vec![Topic::Unified]);
    let events = [
        gift_event(1, "a", 500, None, 0),        // hook, cool, rate
        gift_event(2, "a", 500, Some(false), 1), // streak frame: nothing
        gift_event(3, "a", 50, Some(true), 2), // final frame, 50 coins: cool (cooling down: no), rate
        gift_event(4, "b", 100, None, 3),      // hook, cool (other user); rate used up
        gift_event(5, "a", 100, None, 61),     // hook, cool (cooldown over)
    ];
    let mut batch = records(&events);
    batch.push(InputRecord { payload: Some(b"not avro".to_vec()), ..batch[0].clone() });
    let out = stage.handle(&batch).await.expect("handled");
    assert!(matches!(&out[5], Disposition::Reject(r) if r.reason == "invalid_avro"));
    let out = emitted(&out[..5]);
    let rule_ids = |o: &Vec<ttlc_core::Output>| -> Vec<String> {
        o.iter().map(|o| decode_action(&o.payload).expect("action").rule_id).collect()
    };
    assert_eq!(rule_ids(&out[0]), ["hook", "cool", "rate"], "priority order");
    assert!(out[1].is_empty(), "streak frames do not count");
    assert_eq!(rule_ids(&out[2]), ["rate"]);
    assert_eq!(rule_ids(&out[3]), ["hook", "cool"]);
    assert_eq!(rule_ids(&out[4]), ["hook", "cool"]);

    let first = &out[0][0];
    assert_eq!(first.topic, Topic::Actions);
    assert_eq!(first.key, b"s1");
    let header = |k: &str| {
        first
            .headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("avro/binary"));
    assert_eq!(header("schema").as_deref(), Some("action-request.v1"));
    assert_eq!(header("trace-id"), Some(events[0].event_id.clone()));
    let a = decode_action(&first.payload).expect("action");
    assert_eq!(a.action_id, action_id("hook", &events[0].event_id));
    assert_eq!((a.attempt, a.action_type), (1, ActionType::Webhook));
    assert_eq!(a.rendered_template, "ua 500");
    assert_eq!(a.params["url"], "https://hooks.example.com/x");
    let ban = decode_action(&out[0][1].payload).expect("action");
    assert_eq!(ban.params["targetUserId"], "a", "moderation learns its target from the event");

    // Re-processing the same event gives the same action id (the executor dedupes on it).
    let (_tx2, rx2) = watch::channel(Some(Arc::new(set(&[(
        "hook",
        json!({"name": "hook", "eventType": "GIFT",
        "action": {"type": "log"}}),
    )]))));
    let again =
        emitted(&RulesStage::new(rx2, 10).handle(&records(&events[..1])).await.expect("handled"));
    assert_eq!(decode_action(&again[0][0].payload).expect("action").action_id, a.action_id);
}

#[tokio::test]
async fn no_rules_loaded_yet_is_retryable() {
    let (tx, rx) = watch::channel(None);
    let mut stage = RulesStage::new(rx, 10);
    let batch = records(&[gift_event(1, "a", 500, None, 0)]);
    let err = stage.handle(&batch).await.expect_err("not loaded");
    assert!(err.is_retryable());
    tx.send_replace(Some(Arc::new(RuleSet::default())));
    let out = stage.handle(&batch).await.expect("loaded");
    assert!(matches!(&out[0], Disposition::Emit(o) if o.is_empty()));
}
