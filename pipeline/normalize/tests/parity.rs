//! `data` and `dataB64` of the same message normalize to the same event.
//!
//! The `data` form here is rendered from the protobuf bytes by prost-reflect's standard proto3
//! JSON serializer, not by our code, so a field our JSON reader misspells (or a default it treats
//! differently from protobuf) shows up as a difference. RAW events are excluded by design: their
//! data is the form they arrived in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use serde_json::Value;
use support::{fixtures, listing, read_json};
use ttlc_schemas::EventType;

/// Replaces `dataB64` by its proto3 JSON rendering; `None` when we have no proto for the type.
fn as_data_form(mut env: Value) -> Option<Value> {
    let obj = env.as_object_mut()?;
    let b64 = obj.remove("dataB64")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_str()?).ok()?;
    let raw_type = obj.get("type")?.as_str()?.to_owned();
    let data = support::protojson::to_json(&raw_type, &bytes)?;
    obj.insert("data".into(), Value::Object(data));
    Some(env)
}

fn check(name: &str, env: Value) -> bool {
    let from_bytes = ttlc_normalize::normalize_bytes(&serde_json::to_vec(&env).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    if from_bytes.event_type == EventType::Raw {
        return false;
    }
    let Some(json_env) = as_data_form(env) else { return false };
    let from_json = ttlc_normalize::normalize_bytes(&serde_json::to_vec(&json_env).unwrap())
        .unwrap_or_else(|e| panic!("{name} (data form): {e}"));
    assert_eq!(from_json, from_bytes, "{name}: the two forms disagree");
    true
}

#[test]
fn golden_b64_fixtures_match_their_proto3_json_rendering() {
    let mut compared = 0;
    for (name, path) in listing("raw", "json") {
        let env = read_json(&path);
        if env.get("dataB64").is_some() && check(&name, env) {
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} fixtures compared");
}

#[test]
fn demo_mix_b64_lines_match_their_proto3_json_rendering() {
    let mut compared = 0;
    for (i, line) in support::demo_lines().into_iter().enumerate() {
        let env: Value = serde_json::from_slice(&line).unwrap();
        if env.get("dataB64").is_some() && check(&format!("demo line {}", i + 1), env) {
            compared += 1;
        }
    }
    assert!(compared > 1000, "only {compared} lines compared");
}

#[test]
fn committed_data_fixtures_are_the_rendering_of_their_b64_twins() {
    // `<name>.json` must be exactly `<name>-b64.json` in the data form, so the two halves of a
    // pair cannot drift apart when one is edited by hand.
    let mut pairs = 0;
    for (name, path) in listing("raw", "json") {
        let Some(base) = name.strip_suffix("-b64") else { continue };
        let twin = fixtures().join("raw").join(format!("{base}.json"));
        if !twin.exists() {
            continue;
        }
        let Some(rendered) = as_data_form(read_json(&path)) else { continue };
        assert_eq!(rendered, read_json(&twin), "{base}.json is not the data form of {name}.json");
        pairs += 1;
    }
    assert!(pairs >= 15, "only {pairs} pairs");
}
