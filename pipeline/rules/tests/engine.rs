//! The pure engine: evaluation over UnifiedEvent JSON, gift streak semantics, scope, replay,
//! priority order, rendering and action ids.

use chrono::{TimeZone, Utc};
use datalogic_rs::bumpalo::Bump;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ttlc_rules::{
    CompiledRule, Rule, RuleInput, RuleSet, ValidationOptions, action_id, compile, evaluate,
    evaluate_json, render,
};
use ttlc_schemas::event::{ChatPayload, GiftPayload};
use ttlc_schemas::{EventType, Payload, Source, UnifiedEvent, User};

fn rule(id: &str, spec: Value) -> Rule {
    let now = Utc::now();
    Rule {
        id: id.into(),
        spec: serde_json::from_value(spec).expect("rule JSON"),
        created_at: now,
        updated_at: now,
    }
}

fn compiled(id: &str, spec: Value) -> CompiledRule {
    compile(rule(id, spec), &ValidationOptions::default()).expect("compiles")
}

fn gift_rule(id: &str, extra: Value) -> Value {
    let mut v = json!({
        "name": id, "eventType": "GIFT",
        "condition": {">=": [{"var": "payload.coins"}, 100]},
        "action": {"type": "log", "template": "{displayName} sent {giftCount}x {giftName} ({coins} coins)"}
    });
    for (k, val) in extra.as_object().expect("object") {
        v[k] = val.clone();
    }
    v
}

fn event(seq: i64, payload: Payload) -> UnifiedEvent {
    let event_type = payload.event_type();
    UnifiedEvent {
        schema_version: "1".into(),
        event_id: hex::encode(Sha256::digest(format!("s1:sess:{seq}"))),
        event_type,
        trigger_id: event_type.trigger_id(),
        stream_id: "s1".into(),
        session_id: "sess".into(),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).single().expect("time"),
        ingested_at: None,
        source: Source::Live,
        seq_no: Some(seq),
        user: User {
            user_id: "42".into(),
            unique_id: "alice".into(),
            display_name: Some("Alice".into()),
            ..User::default()
        },
        payload: Some(payload),
    }
}

fn gift(coins: i64, count: i64, streak: Option<(bool, bool)>) -> Payload {
    Payload::Gift(GiftPayload {
        gift_id: 1,
        gift_name: "Rose".into(),
        gift_count: count,
        coins,
        is_gift_streak: streak.map(|_| true),
        streak_active: streak.map(|(active, _)| active),
        streak_end: streak.map(|(_, end)| end),
        ..GiftPayload::default()
    })
}

#[test]
fn gift_rules_count_final_frames_only_unless_opted_in() {
    let plain = compiled("r", gift_rule("r", json!({})));
    let opted = compiled("o", gift_rule("o", json!({"meta": {"countStreakFrames": true}})));
    let mid_streak = event(1, gift(150, 15, Some((true, false))));
    let end_streak = event(2, gift(300, 30, Some((false, true))));
    let single = event(3, gift(100, 1, None));
    let small = event(4, gift(99, 1, None));
    assert!(!evaluate(&plain, &mid_streak), "a streak frame is not counted");
    assert!(evaluate(&plain, &end_streak), "the final frame is");
    assert!(evaluate(&plain, &single), "a non-streak gift is final");
    assert!(!evaluate(&plain, &small), "99 < 100");
    assert!(evaluate(&opted, &mid_streak), "opt-in counts streak frames");
}

#[test]
fn scope_type_and_replay() {
    let scoped = compiled("a", gift_rule("a", json!({"streamId": "other"})));
    let replay_skip = compiled("b", gift_rule("b", json!({"meta": {"skipReplay": true}})));
    let e = event(1, gift(500, 5, None));
    assert!(!evaluate(&scoped, &e), "other stream");
    assert!(evaluate(&replay_skip, &e));
    let mut replayed = e.clone();
    replayed.source = Source::Replay;
    assert!(!evaluate(&replay_skip, &replayed));
    let chat = event(2, Payload::Chat(ChatPayload { message: "hi".into(), ..Default::default() }));
    assert!(!evaluate(&replay_skip, &chat), "wrong event type");
}

#[test]
fn conditions_see_the_event_json_and_errors_do_not_match() {
    let r = compiled(
        "c",
        json!({
            "name": "c", "eventType": "CHAT",
            "condition": {"and": [{"in": ["!discord", {"var": "payload.message"}]}, {"!": {"var": "user.isModerator"}}]},
            "action": {"type": "log"}
        }),
    );
    let chat =
        |m: &str| event(1, Payload::Chat(ChatPayload { message: m.into(), ..Default::default() }));
    assert!(evaluate(&r, &chat("join !discord now")));
    assert!(!evaluate(&r, &chat("hello")));
    assert!(evaluate_json(&r, &json!({"payload": {"message": "!discord"}, "user": {}})));
    assert!(!evaluate_json(&r, &json!("not an object")));
}

#[test]
fn rule_set_orders_by_priority_and_filters() {
    let set = RuleSet::new([
        compiled("low", gift_rule("low", json!({"priority": 1}))),
        compiled("high", gift_rule("high", json!({"priority": 10}))),
        compiled("off", gift_rule("off", json!({"enabled": false}))),
        compiled("other", gift_rule("other", json!({"streamId": "s2", "priority": 99}))),
        compiled(
            "never",
            gift_rule(
                "never",
                json!({"priority": 50, "condition": {">": [{"var": "payload.coins"}, 1000000]}}),
            ),
        ),
    ]);
    assert_eq!(set.len(), 4, "disabled rules are left out");
    let mut arena = Bump::new();
    let got: Vec<String> = set
        .matching(&event(1, gift(500, 5, None)), &mut arena)
        .iter()
        .map(|r| r.rule.id.clone())
        .collect();
    assert_eq!(got, ["high", "low"]);
    assert!(set.matching(&event(2, gift(500, 5, Some((true, false)))), &mut arena).is_empty());
}

#[test]
fn render_substitutes_tokens_only() {
    let e = event(7, gift(300, 30, None));
    assert_eq!(
        render("{displayName} sent {giftCount}x {giftName} ({coins} coins)", &e),
        "Alice sent 30x Rose (300 coins)"
    );
    assert_eq!(
        render("{{username}} {username} {unknown} {message}", &e),
        "{username} alice {unknown} "
    );
    assert_eq!(
        render("{eventType} {streamId} {timestamp}", &e),
        "GIFT s1 2026-11-20T18:00:00.000Z"
    );
    // Event text is inserted verbatim, never interpreted.
    let chat = event(
        8,
        Payload::Chat(ChatPayload { message: "{userId} ${jndi:x}".into(), ..Default::default() }),
    );
    assert_eq!(render("said: {message}", &chat), "said: {userId} ${jndi:x}");
    let r = compiled("t", gift_rule("t", json!({})));
    assert_eq!(r.render(&e), "Alice sent 30x Rose (300 coins)");
}

#[test]
fn action_id_is_sha256_of_rule_and_event() {
    let id = action_id("rule-1", "evt");
    assert_eq!(id, hex::encode(Sha256::digest("rule-1:evt")));
    assert_eq!(id, action_id("rule-1", "evt"));
    assert_ne!(id, action_id("rule-2", "evt"));
    let input: RuleInput = serde_json::from_value(gift_rule("x", json!({}))).expect("parses");
    assert_eq!(input.event_type, EventType::Gift);
}

#[test]
fn dry_run_for_the_api() {
    let options = ValidationOptions::default();
    let input: RuleInput = serde_json::from_value(gift_rule("x", json!({}))).expect("parses");
    let e = serde_json::to_value(event(1, gift(300, 30, None))).expect("json");
    let r = ttlc_rules::test_rule(&input, &e, &options);
    assert!(r.matched && r.errors.is_empty());
    assert_eq!(r.rendered_template.as_deref(), Some("Alice sent 30x Rose (300 coins)"));
    let streak = serde_json::to_value(event(2, gift(300, 30, Some((true, false))))).expect("json");
    let r = ttlc_rules::test_rule(&input, &streak, &options);
    assert!(!r.matched, "streak frame");
    assert!(r.rendered_template.is_some());
    let r = ttlc_rules::test_rule(&input, &json!({"eventType": "GIFT"}), &options);
    assert!(!r.matched && r.errors[0].starts_with("event:"));
    let mut bad = input.clone();
    bad.condition = json!({"eval": 1});
    assert!(ttlc_rules::test_rule(&bad, &e, &options).errors[0].starts_with("condition/eval"));
}
