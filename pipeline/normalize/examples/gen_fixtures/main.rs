//! Regenerates `fixtures/` so every fixture is reproducible from code.
//!
//! ```text
//! cargo run -p ttlc-normalize --example gen_fixtures            # raw/, malformed/, demo/
//! cargo run -p ttlc-normalize --example gen_fixtures -- --bless # also rewrite unified/
//! ```
//!
//! `unified/` holds the expected outputs. They are only rewritten with `--bless`, after a person
//! has read the diff: a golden file written by the code under test proves nothing until reviewed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/support/protojson.rs"]
mod protojson;

mod builders;
mod cases;
mod demo;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use prost::Message;
use serde_json::{Value, json};
use ttlc_webcast as wc;

use crate::builders::{Body, Frame};

fn main() {
    let bless = std::env::args().any(|a| a == "--bless");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let dir = |sub: &str| -> PathBuf {
        let d = root.join(sub);
        fs::create_dir_all(&d).expect("create fixture dir");
        d
    };
    let (raw, unified, malformed, demo_dir) =
        (dir("raw"), dir("unified"), dir("malformed"), dir("demo"));

    let golden = cases::golden();
    for (name, frame) in &golden {
        let text = pretty(&frame.envelope());
        fs::write(raw.join(format!("{name}.json")), &text).expect("write raw fixture");
        if bless {
            let event = ttlc_normalize::normalize_bytes(text.as_bytes())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let out = pretty(&serde_json::to_value(&event).expect("event to JSON"));
            fs::write(unified.join(format!("{name}.json")), out).expect("write unified fixture");
        }
    }

    let chat =
        golden.iter().find(|(n, _)| n == "chat-b64").map(|(_, f)| f.clone()).expect("chat-b64");
    let expected = write_malformed(&malformed, &chat);
    fs::write(malformed.join("expected.json"), pretty(&serde_json::to_value(&expected).unwrap()))
        .unwrap();

    let mixed = demo::mixed();
    let mut ndjson = String::new();
    for frame in &mixed {
        ndjson.push_str(&serde_json::to_string(&frame.envelope()).unwrap());
        ndjson.push('\n');
    }
    fs::write(demo_dir.join("mixed.ndjson"), ndjson).unwrap();

    println!(
        "wrote {} golden raw fixtures{}, {} malformed, {} demo lines to {}",
        golden.len(),
        if bless { " (and blessed unified/)" } else { "" },
        expected.len(),
        mixed.len(),
        root.display()
    );
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

/// Writes one file per way a record can be broken; returns file name → expected DLQ reason.
fn write_malformed(dir: &Path, chat: &Frame) -> BTreeMap<String, &'static str> {
    let mut expected = BTreeMap::new();
    let mut put = |name: &str, bytes: Vec<u8>, reason: &'static str| {
        fs::write(dir.join(name), bytes).unwrap();
        expected.insert(name.to_owned(), reason);
    };
    let base = chat.envelope();
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| -> Vec<u8> {
        let mut v = base.clone();
        f(v.as_object_mut().unwrap());
        pretty(&v).into_bytes()
    };
    let text = pretty(&base);

    put("bad-json.txt", text.as_bytes()[..text.len() / 2].to_vec(), "invalid_json");
    put("not-json.txt", b"WebcastChatMessage hello\n".to_vec(), "invalid_json");
    let mut not_utf8 = br#"{"schemaVersion":"raw.v1","streamId":""#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0x22, 0x7d, 0x0a]);
    put("not-utf8.txt", not_utf8, "invalid_json");
    put(
        "bad-base64.json",
        with(&|m| {
            m.insert("dataB64".into(), json!("this is not base64 at all!"));
        }),
        "invalid_base64",
    );

    let Body::Proto(bytes) = &chat.body else { panic!("chat-b64 has bytes") };
    let cut = &bytes[..bytes.len() - 7];
    assert!(wc::WebcastChatMessage::decode(cut).is_err(), "the cut must break the message");
    let cut_b64 = base64::engine::general_purpose::STANDARD.encode(cut);
    put(
        "truncated-protobuf.json",
        with(&|m| {
            m.insert("dataB64".into(), json!(cut_b64));
        }),
        "invalid_protobuf",
    );

    put(
        "unknown-schema-version.json",
        with(&|m| {
            m.insert("schemaVersion".into(), json!("raw.v2"));
            m.insert("partitionHint".into(), json!(3));
        }),
        "unsupported_schema_version",
    );
    put(
        "missing-stream-id.json",
        with(&|m| {
            m.remove("streamId");
        }),
        "missing_field",
    );
    put(
        "missing-type.json",
        with(&|m| {
            m.remove("type");
        }),
        "missing_field",
    );
    put(
        "both-data-and-b64.json",
        with(&|m| {
            m.insert("data".into(), json!({"comment": "hello"}));
        }),
        "invalid_envelope",
    );
    put(
        "neither-data-nor-b64.json",
        with(&|m| {
            m.remove("dataB64");
        }),
        "missing_field",
    );
    put(
        "bad-session-id.json",
        with(&|m| {
            m.insert("sessionId".into(), json!("session-42"));
        }),
        "invalid_envelope",
    );
    put(
        "negative-seq-no.json",
        with(&|m| {
            m.insert("seqNo".into(), json!(-1));
        }),
        "invalid_envelope",
    );
    put(
        "bad-timestamp.json",
        with(&|m| {
            m.insert("timestamp".into(), json!("yesterday"));
        }),
        "invalid_envelope",
    );
    put(
        "unknown-source.json",
        with(&|m| {
            m.insert("source".into(), json!("backfill"));
        }),
        "invalid_envelope",
    );

    let gift_no_details =
        wc::WebcastGiftMessage { gift_id: 5655, repeat_count: 1, ..Default::default() };
    let b64 = base64::engine::general_purpose::STANDARD.encode(gift_no_details.encode_to_vec());
    put(
        "gift-without-details-b64.json",
        with(&|m| {
            m.insert("type".into(), json!("WebcastGiftMessage"));
            m.insert("dataB64".into(), json!(b64));
        }),
        "invalid_payload",
    );
    let json_data = |m: &mut serde_json::Map<String, Value>, raw_type: &str, data: Value| {
        m.remove("dataB64");
        m.insert("type".into(), json!(raw_type));
        m.insert("data".into(), data);
    };
    put(
        "gift-without-details.json",
        with(&|m| json_data(m, "WebcastGiftMessage", json!({"giftId": 5655, "repeatCount": 1}))),
        "invalid_payload",
    );
    put(
        "comment-not-a-string.json",
        with(&|m| json_data(m, "WebcastChatMessage", json!({"comment": 42}))),
        "invalid_payload",
    );
    put(
        "user-not-an-object.json",
        with(&|m| json_data(m, "WebcastLikeMessage", json!({"likeCount": 3, "user": "alice"}))),
        "invalid_payload",
    );
    put(
        "emote-without-emotes.json",
        with(&|m| json_data(m, "WebcastEmoteChatMessage", json!({"emoteList": []}))),
        "invalid_payload",
    );
    put(
        "error-without-message.json",
        with(&|m| json_data(m, "ControlEvent.ERROR", json!({"code": "E_UNKNOWN"}))),
        "invalid_payload",
    );
    let replay = |m: &mut serde_json::Map<String, Value>, provider: &str, data: Value| {
        json_data(m, "Replay.CHAT", data);
        m.insert("provider".into(), json!(provider));
        m.insert("source".into(), json!("replay"));
        m.insert("sessionId".into(), json!(cases::REPLAY.session_id));
    };
    put(
        "replay-without-unified-event.json",
        with(&|m| replay(m, "replay", json!({"replayOf": "3f1c2a9e-8b7d-4c6e-9a1b-2d3e4f5a6b7c"}))),
        "invalid_payload",
    );
    put(
        "replay-from-live-provider.json",
        with(&|m| replay(m, "direct", json!({"unifiedEvent": {}}))),
        "invalid_envelope",
    );
    put(
        "lifecycle-as-b64.json",
        with(&|m| {
            m.insert("type".into(), json!("ControlEvent.CONNECTED"));
        }),
        "invalid_payload",
    );
    expected
}
