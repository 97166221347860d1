//! Golden pairs: every `fixtures/raw/<name>.json` normalizes to exactly `fixtures/unified/<name>.json`,
//! and every produced event satisfies the published contract (JSON Schema, Avro round-trip).
//!
//! Table-driven over the directories, so adding a fixture pair adds a case; every failing pair is
//! reported, not just the first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use support::{fixtures, listing, read, read_json};

#[test]
fn every_raw_fixture_matches_its_unified_golden_file() {
    let raws = listing("raw", "json");
    assert!(raws.len() >= 30, "expected the golden set in fixtures/raw, found {}", raws.len());
    let mut failures = Vec::new();
    for (name, path) in &raws {
        let expected_path = fixtures().join("unified").join(format!("{name}.json"));
        if !expected_path.exists() {
            failures.push(format!("{name}: no unified/{name}.json"));
            continue;
        }
        let expected = read_json(&expected_path);
        match ttlc_normalize::normalize_bytes(&read(path)) {
            Ok(event) => {
                let got = serde_json::to_value(&event).expect("event serializes");
                if got != expected {
                    failures.push(format!(
                        "{name}: output differs\n  got:      {got}\n  expected: {expected}"
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: {} ({e})", e.reason())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden pair(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_unified_file_without_its_raw_input() {
    let raws: Vec<String> = listing("raw", "json").into_iter().map(|(n, _)| n).collect();
    let orphans: Vec<String> = listing("unified", "json")
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !raws.contains(n))
        .collect();
    assert!(orphans.is_empty(), "unified files without raw input: {orphans:?}");
}

#[test]
fn golden_set_covers_every_event_type_in_both_forms() {
    let mut seen = std::collections::BTreeSet::new();
    for (name, path) in listing("raw", "json") {
        let raw = read_json(&path);
        let form = if raw.get("dataB64").is_some() { "dataB64" } else { "data" };
        let unified = read_json(&fixtures().join("unified").join(format!("{name}.json")));
        let event_type = unified["eventType"].as_str().expect("eventType").to_owned();
        seen.insert((event_type, form));
    }
    for t in ttlc_schemas::EventType::ALL {
        let name = t.as_str().to_owned();
        assert!(seen.contains(&(name.clone(), "data")), "no {name} fixture in the data form");
        let lifecycle = matches!(name.as_str(), "CONNECTED" | "DISCONNECTED" | "ERROR");
        if !lifecycle {
            assert!(
                seen.contains(&(name.clone(), "dataB64")),
                "no {name} fixture in the dataB64 form"
            );
        }
    }
}

/// The contract, checked on every golden output and the whole demo mix: each event validates
/// against `unified-event.v1.schema.json` and survives Avro encode → decode unchanged.
#[test]
fn every_produced_event_validates_and_round_trips_through_avro() {
    let mut inputs: Vec<(String, Vec<u8>)> =
        listing("raw", "json").into_iter().map(|(n, p)| (n, read(&p))).collect();
    for (i, line) in support::demo_lines().into_iter().enumerate() {
        inputs.push((format!("demo line {}", i + 1), line));
    }
    assert!(inputs.len() > 1000);
    for (name, bytes) in inputs {
        let event =
            ttlc_normalize::normalize_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let doc: Value = serde_json::to_value(&event).unwrap();
        if let Err(v) = ttlc_schemas::validate_unified(&doc) {
            panic!("{name}: {v}\n{doc}");
        }
        let avro = ttlc_schemas::encode_unified(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = ttlc_schemas::decode_unified(&avro).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, event, "{name}: Avro round-trip changed the event");
        // And the JSON form reads back into the same event.
        let reread: ttlc_schemas::UnifiedEvent = serde_json::from_value(doc).unwrap();
        assert_eq!(reread, event, "{name}: JSON round-trip changed the event");
    }
}
