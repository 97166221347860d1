//! Rule evaluations per second with 100 active rules (target: at least 1M per core).
//!
//! Two measurements, both counting one element per rule evaluated:
//! - `conditions_only`: 100 GIFT rules with varied conditions against one GIFT event already
//!   converted to JSON: the JSON Logic cost alone;
//! - `matching_per_event`: the stage's real path, `RuleSet::matching` on a UnifiedEvent (event
//!   to JSON conversion, pre-filters, 100 condition evaluations).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datalogic_rs::bumpalo::Bump;
use serde_json::{Value, json};
use ttlc_rules::{Rule, RuleAction, RuleInput, RuleMeta, RuleSet, ValidationOptions, compile};
use ttlc_schemas::event::GiftPayload;
use ttlc_schemas::{ActionType, EventType, Payload, Source, UnifiedEvent, User};

const RULES: usize = 100;

fn condition(i: usize) -> Value {
    match i % 5 {
        0 => json!({">=": [{"var": "payload.coins"}, (i * 10) as i64]}),
        1 => json!({"and": [
            {"==": [{"var": "payload.giftName"}, "Rose"]},
            {">": [{"var": "payload.giftCount"}, (i % 7) as i64]}
        ]}),
        2 => json!({"in": [{"var": "user.uniqueId"}, ["viewer1", "viewer2", "viewer42"]]}),
        3 => json!({"or": [
            {"==": [{"var": "user.isModerator"}, true]},
            {"<": [{"var": "payload.coins"}, 5]}
        ]}),
        _ => json!({"!": {"==": [{"var": "streamId"}, "other"]}}),
    }
}

fn rule_set() -> RuleSet {
    let now = Utc::now();
    let rules = (0..RULES).map(|i| Rule {
        id: format!("rule-{i:03}"),
        spec: RuleInput {
            stream_id: None,
            name: format!("rule {i}"),
            description: None,
            event_type: EventType::Gift,
            condition: condition(i),
            action: RuleAction {
                action_type: ActionType::Log,
                template: "{username} sent {giftName}".into(),
                params: Default::default(),
            },
            enabled: true,
            priority: (i % 10) as i32,
            meta: RuleMeta::default(),
            cooldown: 0,
            created_by: None,
        },
        created_at: now,
        updated_at: now,
    });
    let options = ValidationOptions::default();
    RuleSet::new(rules.map(|r| compile(r, &options).expect("bench rule compiles")))
}

fn event() -> UnifiedEvent {
    UnifiedEvent {
        schema_version: "1".into(),
        event_id: "a".repeat(64),
        event_type: EventType::Gift,
        trigger_id: 2,
        stream_id: "7300000000000000001".into(),
        session_id: "4f1c3f0e-0000-4000-8000-000000000001".into(),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).single().expect("time"),
        ingested_at: None,
        source: Source::Live,
        seq_no: Some(42),
        user: User {
            user_id: "7000042".into(),
            unique_id: "viewer42".into(),
            display_name: Some("Viewer 42".into()),
            ..User::default()
        },
        payload: Some(Payload::Gift(GiftPayload {
            gift_id: 5655,
            gift_name: "Rose".into(),
            gift_count: 5,
            coins: 500,
            ..GiftPayload::default()
        })),
    }
}

fn bench(c: &mut Criterion) {
    let set = rule_set();
    assert_eq!(set.len(), RULES);
    let event = event();
    let json = serde_json::to_value(&event).expect("event serializes");
    let mut arena = Bump::new();
    // Guard against measuring nothing: a realistic share of the rules must match this event.
    let matched = set.count_matches_json(EventType::Gift, &json, &mut arena);
    assert!(matched > 10 && matched < RULES, "{matched} of {RULES} rules match");
    assert_eq!(set.matching(&event, &mut arena).len(), matched);
    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements(RULES as u64));
    group.bench_function("conditions_only_100_rules", |b| {
        b.iter(|| black_box(set.count_matches_json(EventType::Gift, black_box(&json), &mut arena)))
    });
    group.bench_function("matching_per_event_100_rules", |b| {
        b.iter(|| black_box(set.matching(black_box(&event), &mut arena).len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
