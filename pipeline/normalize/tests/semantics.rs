//! The mapping rules users depend on, asserted directly rather than through golden files:
//! deterministic ids, gift streaks (no double counting), social key disambiguation, lifecycle
//! users and providers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{fixtures, read};
use ttlc_normalize::{event_id, normalize, normalize_bytes};
use ttlc_schemas::event::GiftPayload;
use ttlc_schemas::{EventType, Payload, RawEnvelope, UnifiedEvent};

fn raw(name: &str) -> Vec<u8> {
    read(&fixtures().join("raw").join(format!("{name}.json")))
}

fn event(name: &str) -> UnifiedEvent {
    normalize_bytes(&raw(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn gift(e: &UnifiedEvent) -> &GiftPayload {
    match &e.payload {
        Some(Payload::Gift(g)) => g,
        other => panic!("not a gift: {other:?}"),
    }
}

#[test]
fn event_id_is_deterministic_and_follows_the_formula() {
    let bytes = raw("chat-b64");
    let a = normalize_bytes(&bytes).unwrap();
    let b = normalize_bytes(&bytes).unwrap();
    assert_eq!(a.event_id, b.event_id);
    assert_eq!(a, b, "normalization is a pure function");
    assert_eq!(
        a.event_id,
        event_id(&a.stream_id, &a.session_id, 7_301_000_000_000_000_001, "WebcastChatMessage")
    );
    // The data form of the same message has the same identity, hence the same id.
    assert_eq!(event("chat").event_id, a.event_id);
}

#[test]
fn a_replay_gets_new_event_ids() {
    let mut env: RawEnvelope = serde_json::from_slice(&raw("chat-b64")).unwrap();
    let live = normalize(&env).unwrap();
    env.session_id = "0f0e0d0c-0b0a-4908-8706-050403020100".into();
    env.source = ttlc_schemas::Source::Replay;
    let replay = normalize(&env).unwrap();
    assert_ne!(live.event_id, replay.event_id);
    assert_eq!(replay.source, ttlc_schemas::Source::Replay);
    // Everything but identity is the same event.
    assert_eq!(live.payload, replay.payload);
    assert_eq!(live.user, replay.user);
}

#[test]
fn borrowed_and_owned_paths_agree() {
    for name in ["chat", "chat-b64", "raw-room-user-seq", "social-unknown-b64", "connected-mock"] {
        let env: RawEnvelope = serde_json::from_slice(&raw(name)).unwrap();
        let borrowed = normalize(&env).unwrap();
        let owned = ttlc_normalize::normalize_owned(env).unwrap();
        assert_eq!(borrowed, owned, "{name}");
    }
}

#[test]
fn only_the_final_frame_of_a_streak_ends_it() {
    for form in ["", "-b64"] {
        let frames: Vec<UnifiedEvent> =
            ["gift-streak-1", "gift-streak-2", "gift-streak-3", "gift-streak-end"]
                .iter()
                .map(|n| event(&format!("{n}{form}")))
                .collect();
        let finals: Vec<bool> = frames.iter().map(UnifiedEvent::is_final_gift_frame).collect();
        assert_eq!(finals, [false, false, false, true], "form {form:?}");
        for (i, f) in frames.iter().enumerate() {
            let g = gift(f);
            let last = i == frames.len() - 1;
            assert_eq!(g.streak_end, Some(last));
            assert_eq!(g.streak_active, Some(!last));
            assert_eq!(g.is_gift_streak, Some(true));
            // coins is the running total of the combo: unit price × repeat count.
            assert_eq!(g.coins, g.gift_count * g.diamond_count.unwrap());
        }
        // Counting only final frames counts the combo once, at its full value.
        let counted: i64 =
            frames.iter().filter(|e| e.is_final_gift_frame()).map(|e| gift(e).coins).sum();
        assert_eq!(counted, 9);
    }
}

#[test]
fn a_non_streakable_gift_is_final_by_itself_and_valued_by_unit_price() {
    let e = event("gift-single-b64");
    let g = gift(&e);
    assert_eq!(
        (g.gift_name.as_str(), g.gift_count, g.coins, g.diamond_count),
        ("Galaxy", 1, 1000, Some(1000))
    );
    assert_eq!(
        (g.is_gift_streak, g.streak_end, g.streak_active),
        (Some(false), Some(false), Some(false))
    );
    assert!(e.is_final_gift_frame());
}

#[test]
fn every_streak_in_the_demo_mix_has_exactly_one_final_frame() {
    // groupId is not in the contract, so group by (stream, user, gift) runs in arrival order.
    let mut open: BTreeMap<(String, String, i64), usize> = BTreeMap::new();
    let mut streaks = 0;
    for line in support::demo_lines() {
        let e = normalize_bytes(&line).unwrap();
        let Some(Payload::Gift(g)) = &e.payload else { continue };
        if g.is_gift_streak != Some(true) {
            continue;
        }
        let key = (e.stream_id.clone(), e.user.user_id.clone(), g.gift_id);
        let running = open.entry(key.clone()).or_default();
        if g.streak_end == Some(true) {
            assert!(*running > 0, "a final frame without running frames: {key:?}");
            open.remove(&key);
            streaks += 1;
        } else {
            *running += 1;
        }
    }
    assert!(streaks > 20, "the demo mix should contain many streaks, found {streaks}");
    assert!(open.is_empty(), "streaks without a final frame: {open:?}");
}

#[test]
fn social_messages_are_told_apart_by_display_key() {
    for form in ["", "-b64"] {
        let follow = event(&format!("social-follow{form}"));
        assert_eq!(follow.event_type, EventType::Follow);
        assert_eq!(
            serde_json::to_value(&follow.payload).unwrap(),
            json!({"displayType": "pm_mt_msg_viewer_follow"})
        );
        let share = event(&format!("social-share{form}"));
        assert_eq!(share.event_type, EventType::Share);
        assert_eq!(
            serde_json::to_value(&share.payload).unwrap(),
            json!({"displayType": "pm_mt_msg_viewer_share"})
        );
        let sub = event(&format!("social-subscribe{form}"));
        assert_eq!(
            (sub.event_type, sub.trigger_id, &sub.payload),
            (EventType::Subscribe, 7, &None)
        );
        let unknown = event(&format!("social-unknown{form}"));
        assert_eq!(unknown.event_type, EventType::Raw);
        let Some(Payload::Raw(r)) = &unknown.payload else { panic!("RAW payload expected") };
        assert_eq!(r.raw_type, "WebcastSocialMessage");
        // Nothing is dropped: the key that could not be classified travels with the event.
        let data = Value::Object(r.data.clone().unwrap());
        assert_eq!(
            data["common"]["displayText"]["key"], "pm_mt_guidance_viewer_10_like",
            "form {form:?}"
        );
    }
}

#[test]
fn lifecycle_events_use_the_system_user_and_only_contract_providers() {
    for name in ["connected-direct", "connected-mock", "disconnected", "error"] {
        let e = event(name);
        assert_eq!((e.user.user_id.as_str(), e.user.unique_id.as_str()), ("0", "system"), "{name}");
    }
    let direct = serde_json::to_value(event("connected-direct").payload).unwrap();
    assert_eq!(direct["provider"], "direct");
    let mock = serde_json::to_value(event("connected-mock").payload).unwrap();
    assert!(mock.get("provider").is_none(), "mock sessions leave provider out: {mock}");
    assert_eq!(mock["isConnected"], true);
}

#[test]
fn unknown_types_pass_through_as_raw_with_their_data() {
    let e = event("raw-room-user-seq");
    let Some(Payload::Raw(r)) = &e.payload else { panic!("RAW expected") };
    assert_eq!(r.raw_type, "WebcastRoomUserSeqMessage");
    assert_eq!(r.data.as_ref().unwrap()["popStr"], "15.4K");
    let e = event("raw-room-user-seq-b64");
    let Some(Payload::Raw(r)) = &e.payload else { panic!("RAW expected") };
    // No proto for this method: the original bytes are kept for a future normalizer.
    let env: Value = serde_json::from_slice(&raw("raw-room-user-seq-b64")).unwrap();
    assert_eq!(r.data.as_ref().unwrap()["dataB64"], env["dataB64"]);
}

#[test]
fn user_flags_come_from_badges_and_identity() {
    let chat = event("chat-b64");
    let u = &chat.user;
    assert_eq!(u.is_moderator, Some(true));
    assert_eq!(u.is_subscriber, Some(true));
    assert_eq!(u.team_member_level, Some(5));
    assert_eq!(u.follow_role, Some(1));
    assert_eq!(u.unique_id, "alice.streams");
    assert!(u.avatar_url.as_deref().unwrap().starts_with("https://"));
    // Without follow info, a mutual follow from the identity flags means "friend" (2).
    assert_eq!(event("chat-identity-b64").user.follow_role, Some(2));
    assert_eq!(event("chat-identity-b64").user.is_moderator, Some(false));
}

#[test]
fn timestamps_come_from_the_envelope() {
    let env: Value = serde_json::from_slice(&raw("like-b64")).unwrap();
    let e = event("like-b64");
    assert_eq!(ttlc_schemas::time::format(&e.timestamp), env["timestamp"]);
    assert_eq!(ttlc_schemas::time::format(&e.ingested_at.unwrap()), env["ingestedAt"]);
}
