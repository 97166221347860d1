//! The schema files are well-formed, compatible with the seed contract, stricter where SPEC §3.2
//! says, and agree with the Rust types, checked over the example files in `tests/examples/`.

// Helpers outside #[test] fns panic on purpose too: a panic is how a test reports.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use apache_avro::Schema;
use common::*;
use serde_json::{Value, json};
use ttlc_schemas::{
    ActionRequest, DlqRecord, EventType, RawEnvelope, UnifiedEvent, avro, validate, validate_dlq,
    validate_raw, validate_unified,
};

fn compile(schema: &Value) -> jsonschema::Validator {
    // The same options as the crate's own validators, so the seed is judged by the same rules.
    jsonschema::draft7::options().should_validate_formats(true).build(schema).unwrap()
}

static SEED: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| compile(&load(&seed_schema_path())));

fn seed_errors(doc: &Value) -> Vec<String> {
    SEED.iter_errors(doc).map(|e| format!("{}: {}", e.instance_path(), e)).collect()
}

#[test]
fn avro_schemas_parse_and_name_their_records() {
    let cases = [
        ("unified-event.v1.avsc", "io.ttlc.v1.UnifiedEvent", avro::unified_schema()),
        ("action-request.v1.avsc", "io.ttlc.v1.ActionRequest", avro::action_schema()),
    ];
    for (file, full_name, embedded) in cases {
        let text = std::fs::read_to_string(crate_dir().join(file)).unwrap();
        let parsed = Schema::parse_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let Schema::Record(rec) = &parsed else { panic!("{file}: root is not a record") };
        assert_eq!(rec.name.fullname(None), full_name, "{file}");
        assert_eq!(&parsed, embedded, "{file}: embedded copy differs from the file");
    }
}

#[test]
fn json_schemas_are_valid_draft7_and_compile() {
    for file in [
        "unified-event.v1.schema.json",
        "raw.v1.schema.json",
        "dlq.v1.schema.json",
        "action-request.v1.schema.json",
    ] {
        let schema = load(&crate_dir().join(file));
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#", "{file}");
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{file} is not a valid JSON Schema: {e}");
        }
        compile(&schema);
    }
    // The embedded validators build too (they panic otherwise).
    validate::warm_up();
}

/// The Avro enums and payload union are laid out in trigger-id order; the codec relies on it.
#[test]
fn avro_unified_layout_follows_trigger_ids() {
    let Schema::Record(rec) = avro::unified_schema() else { panic!("not a record") };
    let field = |name: &str| &rec.fields[rec.lookup[name]].schema;
    let Schema::Enum(types) = field("eventType") else { panic!("eventType is not an enum") };
    let expected: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types.symbols, expected);
    let Schema::Union(payload) = field("payload") else { panic!("payload is not a union") };
    let branches: Vec<String> = payload
        .variants()
        .iter()
        .map(|s| match s {
            Schema::Null => "null".to_owned(),
            Schema::Record(r) => r.name.name.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    let mut want = vec!["null".to_owned()];
    for t in EventType::ALL {
        let s = t.as_str();
        want.push(format!("{}{}Payload", &s[..1], s[1..].to_lowercase()));
    }
    assert_eq!(branches, want);
}

/// Every example event is seed-valid, valid under ours, and read and written back unchanged by
/// the Rust type.
#[test]
fn seed_valid_examples_pass_seed_ours_and_rust() {
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for path in json_files_nonempty(&examples("seed-valid")) {
        let doc = load(&path);
        let seed = seed_errors(&doc);
        if !seed.is_empty() {
            failures.push(format!("{}: rejected by the seed: {seed:?}", name(&path)));
        }
        if let Err(v) = validate_unified(&doc) {
            failures.push(format!("{}: rejected by ours: {v}", name(&path)));
        }
        match serde_json::from_value::<UnifiedEvent>(doc.clone()) {
            Ok(ev) => {
                covered.insert(ev.event_type.as_str());
                let back = serde_json::to_value(&ev).unwrap();
                if back != doc {
                    failures.push(format!("{}: Rust re-serializes it as {back}", name(&path)));
                }
            }
            Err(e) => failures.push(format!("{}: Rust rejects it: {e}", name(&path))),
        }
    }
    assert_no_failures("seed-valid examples", &failures);
    let all: BTreeSet<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(covered, all, "every event type needs at least one seed-valid example");
}

/// The seed's payload `oneOf` rejects a CHAT or ERROR payload holding only `message` (it matches
/// both ChatPayload and ErrorPayload). Ours resolves the shape from eventType and accepts them;
/// this test pins that known, deliberate difference.
#[test]
fn seed_ambiguous_examples_pass_ours_but_not_the_seed() {
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("seed-ambiguous")) {
        let doc = load(&path);
        if SEED.is_valid(&doc) {
            failures.push(format!("{}: the seed accepts it; move it to seed-valid/", name(&path)));
        }
        if let Err(v) = validate_unified(&doc) {
            failures.push(format!("{}: rejected by ours: {v}", name(&path)));
        }
        if let Err(e) = serde_json::from_value::<UnifiedEvent>(doc) {
            failures.push(format!("{}: Rust rejects it: {e}", name(&path)));
        }
    }
    assert_no_failures("seed-ambiguous examples", &failures);
}

#[test]
fn incoherent_examples_are_rejected_by_ours_and_rust() {
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("incoherent")) {
        let doc = load(&path);
        match validate_unified(&doc) {
            Ok(()) => failures.push(format!("{}: accepted by ours", name(&path))),
            Err(v) => {
                if v.errors.is_empty() || v.to_string().is_empty() {
                    failures.push(format!("{}: violation without details", name(&path)));
                }
            }
        }
        if let Ok(ev) = serde_json::from_value::<UnifiedEvent>(doc) {
            failures.push(format!("{}: Rust accepts it as {ev:?}", name(&path)));
        }
    }
    assert_no_failures("incoherent examples", &failures);
}

/// Binding eventType to triggerId and payload: every seed-valid example becomes invalid under
/// ours (and for Rust) when given any other trigger id, or relabelled as any other event type.
#[test]
fn event_type_binds_trigger_id_and_payload_shape() {
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("seed-valid")) {
        let doc = load(&path);
        let own = EventType::parse(doc["eventType"].as_str().unwrap()).unwrap();
        for other in EventType::ALL.into_iter().filter(|t| *t != own) {
            let mut wrong_trigger = doc.clone();
            wrong_trigger["triggerId"] = json!(other.trigger_id());
            let mut relabelled = doc.clone();
            relabelled["eventType"] = json!(other.as_str());
            relabelled["triggerId"] = json!(other.trigger_id());
            // Without a payload, relabelling is a legitimate event of the other type.
            let cases: &[(&str, &Value)] = if doc.get("payload").is_some() {
                &[("triggerId", &wrong_trigger), ("payload as", &relabelled)]
            } else {
                &[("triggerId", &wrong_trigger)]
            };
            for (what, variant) in cases {
                if validate_unified(variant).is_ok() {
                    failures.push(format!("{}: {what} {other} accepted by ours", name(&path)));
                }
                if serde_json::from_value::<UnifiedEvent>((*variant).clone()).is_ok() {
                    failures.push(format!("{}: {what} {other} accepted by Rust", name(&path)));
                }
            }
        }
    }
    assert_no_failures("eventType binding", &failures);
}

#[test]
fn violation_lists_failing_paths_without_echoing_values() {
    let mut doc = load(&examples("seed-valid/chat-language.json"));
    doc["triggerId"] = json!(2);
    doc["payload"]["message"] = json!(12345);
    doc["user"]["avatarUrl"] = json!("not a url with secret-ish text");
    let v = validate_unified(&doc).unwrap_err();
    let paths: BTreeSet<&str> = v.paths().collect();
    for want in ["/triggerId", "/payload/message", "/user/avatarUrl"] {
        assert!(paths.contains(want), "{want} missing from {paths:?}");
    }
    let text = v.to_string();
    assert!(text.starts_with("document does not match unified-event.v1: "), "{text}");
    assert!(!text.contains("secret-ish"), "instance values must be masked: {text}");
}

#[test]
fn raw_examples_match_schema_and_rust_type() {
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("raw/valid")) {
        let doc = load(&path);
        if let Err(v) = validate_raw(&doc) {
            failures.push(format!("{}: {v}", name(&path)));
        }
        match serde_json::from_value::<RawEnvelope>(doc.clone()) {
            Ok(env) if serde_json::to_value(&env).unwrap() != doc => {
                failures.push(format!("{}: Rust does not write it back unchanged", name(&path)))
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{}: Rust rejects it: {e}", name(&path))),
        }
    }
    for path in json_files_nonempty(&examples("raw/invalid")) {
        if validate_raw(&load(&path)).is_ok() {
            failures.push(format!("{}: accepted", name(&path)));
        }
    }
    assert_no_failures("raw.v1 examples", &failures);
}

#[test]
fn dlq_examples_match_schema_and_rust_type() {
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("dlq/valid")) {
        let doc = load(&path);
        if let Err(v) = validate_dlq(&doc) {
            failures.push(format!("{}: {v}", name(&path)));
        }
        match serde_json::from_value::<DlqRecord>(doc.clone()) {
            Ok(rec) if serde_json::to_value(&rec).unwrap() != doc => {
                failures.push(format!("{}: Rust does not write it back unchanged", name(&path)))
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{}: Rust rejects it: {e}", name(&path))),
        }
    }
    for path in json_files_nonempty(&examples("dlq/invalid")) {
        if validate_dlq(&load(&path)).is_ok() {
            failures.push(format!("{}: accepted", name(&path)));
        }
    }
    assert_no_failures("dlq.v1 examples", &failures);
}

/// What the Rust helpers produce is what the schema accepts.
#[test]
fn dlq_records_built_in_rust_validate() {
    let cases: [&[u8]; 3] = [b"{\"a\":1}", &[0xde, 0xad, 0xbe, 0xef, 0xff], b""];
    for bytes in cases {
        let (payload, payload_encoding) = DlqRecord::encode_payload(bytes);
        let rec = DlqRecord {
            stage: "normalize".into(),
            reason: "invalid_json".into(),
            error: "expected value at line 1 column 1".into(),
            payload,
            payload_encoding,
            key: None,
            topic: "ttlc.raw".into(),
            partition: 0,
            offset: 7,
            failed_at: chrono::DateTime::from_timestamp_millis(1_763_661_845_123).unwrap(),
            raw_type: None,
            session_id: None,
            event_id: None,
        };
        let doc = serde_json::to_value(&rec).unwrap();
        validate_dlq(&doc).unwrap_or_else(|v| panic!("{bytes:?}: {v}"));
    }
}

#[test]
fn action_examples_match_schema_and_rust_type() {
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("action")) {
        let doc = load(&path);
        if let Err(v) = ttlc_schemas::validate_action(&doc) {
            failures.push(format!("{}: {v}", name(&path)));
        }
        if let Err(e) = serde_json::from_value::<ActionRequest>(doc) {
            failures.push(format!("{}: Rust rejects it: {e}", name(&path)));
        }
    }
    let mut bad = load(&examples("action/webhook.json"));
    bad["attempt"] = json!(0);
    if ttlc_schemas::validate_action(&bad).is_ok() {
        failures.push("attempt 0 accepted".into());
    }
    bad["attempt"] = json!(1);
    bad["type"] = json!("email");
    if ttlc_schemas::validate_action(&bad).is_ok() {
        failures.push("unknown action type accepted".into());
    }
    assert_no_failures("action examples", &failures);
}

/// Where ours is deliberately stricter than the seed (beyond eventType binding, tested above):
/// each mutation below leaves a document the seed accepts and ours rejects. If one of these starts
/// passing ours, the schema lost a tightening; if the seed starts rejecting, the case is moot.
#[test]
fn stricter_than_the_seed_exactly_where_documented() {
    type Mutation = fn(&mut Value);
    let cases: [(&str, &str, Mutation); 5] = [
        ("chat-language", "sessionId not a UUID", |d| d["sessionId"] = json!("session-1")),
        ("chat-language", "unknown top-level field", |d| d["region"] = json!("EU")),
        ("chat-emotes", "unknown emote field", |d| d["payload"]["emotes"][0]["size"] = json!(3)),
        ("battle", "unknown participant field", |d| {
            d["payload"]["participants"][0]["team"] = json!("red")
        }),
        ("gift-single", "triggerId above 13", |d| d["triggerId"] = json!(99)),
    ];
    let mut failures = Vec::new();
    for (file, what, mutate) in cases {
        let mut doc = load(&examples(&format!("seed-valid/{file}.json")));
        mutate(&mut doc);
        let seed = seed_errors(&doc);
        if !seed.is_empty() {
            failures.push(format!("{what}: the seed rejects it too: {seed:?}"));
        }
        if validate_unified(&doc).is_ok() {
            failures.push(format!("{what}: ours accepts it"));
        }
    }
    assert_no_failures("documented tightenings", &failures);
}
