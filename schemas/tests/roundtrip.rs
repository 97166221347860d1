//! JSON → Rust → Avro single-object bytes → Rust → JSON is the identity, for every golden
//! unified fixture in the workspace (`fixtures/unified/`) and every example event here, and the
//! JSON is valid under our schema. The same for ActionRequests.

// Helpers outside #[test] fns panic on purpose too: a panic is how a test reports.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;
use ttlc_schemas::{
    ActionRequest, UnifiedEvent, avro, decode_action, decode_unified, encode_action,
    encode_unified, validate_action, validate_unified,
};

fn unified_inputs() -> Vec<PathBuf> {
    // Our examples keep the test meaningful while the golden fixtures are still being written.
    let mut files = json_files_nonempty(&examples("seed-valid"));
    files.extend(json_files_nonempty(&examples("seed-ambiguous")));
    files.extend(json_files(&workspace_dir().join("fixtures/unified")));
    files
}

fn header(fingerprint: u64) -> Vec<u8> {
    let mut h = vec![0xC3, 0x01];
    h.extend_from_slice(&fingerprint.to_le_bytes());
    h
}

#[test]
fn unified_json_avro_json_is_identity() {
    let want_header = header(avro::unified_fingerprint());
    let mut failures = Vec::new();
    for path in unified_inputs() {
        let doc = load(&path);
        if let Err(v) = validate_unified(&doc) {
            failures.push(format!("{}: {v}", name(&path)));
        }
        let event: UnifiedEvent = match serde_json::from_value(doc.clone()) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{}: does not deserialize: {e}", name(&path)));
                continue;
            }
        };
        let bytes = match encode_unified(&event) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{}: encode: {e}", name(&path)));
                continue;
            }
        };
        if !bytes.starts_with(&want_header) {
            failures.push(format!("{}: header is {:02x?}", name(&path), &bytes[..10]));
        }
        match decode_unified(&bytes) {
            Ok(back) => {
                if back != event {
                    failures.push(format!("{}: decoded {back:?}", name(&path)));
                }
                let json = serde_json::to_value(&back).unwrap();
                if json != doc {
                    failures.push(format!("{}: came back as {json}", name(&path)));
                }
            }
            Err(e) => failures.push(format!("{}: decode: {e}", name(&path))),
        }
    }
    assert_no_failures("unified round trip", &failures);
}

#[test]
fn action_json_avro_json_is_identity() {
    let want_header = header(avro::action_fingerprint());
    let mut failures = Vec::new();
    for path in json_files_nonempty(&examples("action")) {
        let doc = load(&path);
        if let Err(v) = validate_action(&doc) {
            failures.push(format!("{}: {v}", name(&path)));
        }
        let action: ActionRequest = serde_json::from_value(doc.clone()).unwrap();
        let bytes = encode_action(&action).unwrap();
        if !bytes.starts_with(&want_header) {
            failures.push(format!("{}: header is {:02x?}", name(&path), &bytes[..10]));
        }
        match decode_action(&bytes) {
            Ok(back) => {
                let json = serde_json::to_value(&back).unwrap();
                if back != action || json != doc {
                    failures.push(format!("{}: came back as {json}", name(&path)));
                }
            }
            Err(e) => failures.push(format!("{}: decode: {e}", name(&path))),
        }
    }
    assert_no_failures("action round trip", &failures);
}

/// Missing `params` in JSON means `{}`; it is written back explicitly and survives Avro.
#[test]
fn action_without_params_round_trips_as_empty_object() {
    let mut doc = load(&examples("action/announce.json"));
    doc.as_object_mut().unwrap().remove("params");
    let action: ActionRequest = serde_json::from_value(doc).unwrap();
    let back = decode_action(&encode_action(&action).unwrap()).unwrap();
    assert!(back.params.is_empty());
    assert_eq!(serde_json::to_value(&back).unwrap()["params"], serde_json::json!({}));
}
