//! Broken records get exactly the DLQ reason `fixtures/malformed/expected.json` names, through the
//! library, the stage path and the offline command alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use support::{fixtures, read, read_json};

fn expected() -> BTreeMap<String, String> {
    let v = read_json(&fixtures().join("malformed/expected.json"));
    serde_json::from_value(v).expect("expected.json maps file names to reasons")
}

#[test]
fn every_malformed_file_is_listed_and_every_listed_file_exists() {
    let expected = expected();
    assert!(expected.len() >= 7, "the malformed set is too small: {}", expected.len());
    let dir = fixtures().join("malformed");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.json")
        .collect();
    on_disk.sort();
    let listed: Vec<String> = expected.keys().cloned().collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn malformed_records_get_their_exact_reason() {
    let mut failures = Vec::new();
    for (file, reason) in expected() {
        let bytes = read(&fixtures().join("malformed").join(&file));
        match ttlc_normalize::normalize_bytes(&bytes) {
            Ok(event) => {
                failures.push(format!("{file}: normalized to a {} event", event.event_type))
            }
            Err(e) if e.reason() != reason => {
                failures.push(format!("{file}: reason {} ({e}), expected {reason}", e.reason()))
            }
            Err(_) => {}
        }
        // The stage path reports the same category.
        match ttlc_normalize::stage::process(&bytes) {
            Ok(_) => failures.push(format!("{file}: the stage accepted it")),
            Err(r) if r.reason != reason => {
                failures.push(format!("{file}: stage reason {}, expected {reason}", r.reason))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_reason_category_is_exercised() {
    let reasons: std::collections::BTreeSet<String> = expected().into_values().collect();
    for r in ttlc_normalize::NormalizeError::REASONS {
        assert!(reasons.contains(r), "no malformed fixture for reason {r}");
    }
}

#[test]
fn rejections_after_parsing_name_the_raw_type_and_session() {
    let bytes = read(&fixtures().join("malformed/truncated-protobuf.json"));
    let r = ttlc_normalize::stage::process(&bytes).unwrap_err();
    assert_eq!(r.raw_type.as_deref(), Some("WebcastChatMessage"));
    assert_eq!(r.session_id.as_deref(), Some("3f1c2a9e-8b7d-4c6e-9a1b-2d3e4f5a6b7c"));
    let bytes = read(&fixtures().join("malformed/bad-json.txt"));
    let r = ttlc_normalize::stage::process(&bytes).unwrap_err();
    assert_eq!((r.raw_type, r.session_id), (None, None));
}

#[test]
fn errors_do_not_echo_payload_text() {
    // The chat text of the fixture must not leak into DLQ error messages (they reach logs).
    for file in ["truncated-protobuf.json", "both-data-and-b64.json", "comment-not-a-string.json"] {
        let bytes = read(&fixtures().join("malformed").join(file));
        let e = ttlc_normalize::normalize_bytes(&bytes).unwrap_err().to_string();
        assert!(!e.contains("hello"), "{file}: {e}");
    }
}
