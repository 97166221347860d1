//! The stage wiring and the offline command: records in, `unified` outputs or rejections out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use support::{fixtures, read};
use ttlc_core::kafka::headers;
use ttlc_core::{Disposition, InputRecord, Stage};
use ttlc_normalize::{NormalizeStage, run_offline};
use ttlc_topics::Topic;

fn record(offset: i64, payload: Option<Vec<u8>>) -> InputRecord {
    InputRecord {
        topic: "ttlc.raw".into(),
        partition: 0,
        offset,
        key: None,
        payload,
        headers: Vec::new(),
        timestamp_ms: None,
    }
}

/// `handle` does its work before returning a ready future; poll it once.
fn handle(stage: &mut NormalizeStage, batch: &[InputRecord]) -> Vec<Disposition> {
    let fut = pin!(stage.handle(batch));
    match fut.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r.expect("normalize never fails a batch"),
        Poll::Pending => panic!("normalize's handle should be ready at once"),
    }
}

fn header<'a>(h: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    let v = h.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} header"));
    std::str::from_utf8(&v.1).unwrap()
}

#[test]
fn stage_identity() {
    let stage = NormalizeStage::new();
    assert_eq!(stage.name(), "normalize");
    assert_eq!(stage.inputs(), vec![Topic::Raw]);
}

#[test]
fn one_disposition_per_record_in_order() {
    let mut stage = NormalizeStage::new();
    let batch = vec![
        record(10, Some(read(&fixtures().join("raw/gift-streak-end-b64.json")))),
        record(11, Some(read(&fixtures().join("malformed/bad-base64.json")))),
        record(12, None),
        record(13, Some(read(&fixtures().join("raw/connected-mock.json")))),
    ];
    let out = handle(&mut stage, &batch);
    assert_eq!(out.len(), 4);

    let Disposition::Emit(outputs) = &out[0] else {
        panic!("gift should be emitted: {:?}", out[0])
    };
    assert_eq!(outputs.len(), 1);
    let o = &outputs[0];
    assert_eq!(o.topic, Topic::Unified);
    let event = ttlc_schemas::decode_unified(&o.payload).expect("payload is Avro UnifiedEvent");
    assert_eq!(o.key, event.stream_id.as_bytes());
    assert_eq!(header(&o.headers, headers::CONTENT_TYPE), ttlc_schemas::CONTENT_TYPE_AVRO);
    assert_eq!(header(&o.headers, headers::SCHEMA), ttlc_schemas::UNIFIED_SCHEMA);
    assert_eq!(header(&o.headers, headers::SCHEMA_VERSION), "1");
    assert_eq!(header(&o.headers, headers::TRACE_ID), event.event_id);
    assert!(event.is_final_gift_frame());

    let Disposition::Reject(r) = &out[1] else { panic!("bad base64 should be rejected") };
    assert_eq!(r.reason, "invalid_base64");
    assert_eq!(r.raw_type.as_deref(), Some("WebcastChatMessage"));
    let Disposition::Reject(r) = &out[2] else { panic!("an empty record should be rejected") };
    assert_eq!(r.reason, "empty_record");
    assert!(matches!(&out[3], Disposition::Emit(o) if o.len() == 1));
}

#[test]
fn the_whole_demo_mix_goes_through_the_stage() {
    let mut stage = NormalizeStage::new();
    let batch: Vec<InputRecord> = support::demo_lines()
        .into_iter()
        .enumerate()
        .map(|(i, l)| record(i as i64, Some(l)))
        .collect();
    let out = handle(&mut stage, &batch);
    assert_eq!(out.len(), batch.len());
    let rejected: Vec<_> = out.iter().filter(|d| matches!(d, Disposition::Reject(_))).collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

#[test]
fn offline_writes_events_and_dlq_records_with_line_numbers() {
    let good = String::from_utf8(read(&fixtures().join("raw/like-b64.json"))).unwrap();
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    let bad = "{\"schemaVersion\":\"raw.v2\"}";
    let input = format!("{good}\n\n{bad}\r\n{good}\n");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let stats = run_offline(input.as_bytes(), &mut out, &mut err).unwrap();
    assert_eq!((stats.lines, stats.events, stats.rejected, stats.blank), (4, 2, 1, 1));

    let events: Vec<ttlc_schemas::UnifiedEvent> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each out line is a UnifiedEvent"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], events[1]);

    let dlq: Vec<serde_json::Value> =
        String::from_utf8(err).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dlq.len(), 1);
    ttlc_schemas::validate_dlq(&dlq[0]).expect("DLQ record matches dlq.v1");
    let rec: ttlc_schemas::DlqRecord = serde_json::from_value(dlq[0].clone()).unwrap();
    assert_eq!(
        (rec.stage.as_str(), rec.reason.as_str()),
        ("normalize", "unsupported_schema_version")
    );
    assert_eq!((rec.topic.as_str(), rec.partition, rec.offset), ("-", -1, 3));
    assert_eq!(rec.payload, bad);
}

#[test]
fn offline_keeps_non_utf8_lines_as_base64() {
    let input: &[u8] = b"\xff\xfe not json\n";
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let stats = run_offline(input, &mut out, &mut err).unwrap();
    assert_eq!(stats.rejected, 1);
    let rec: ttlc_schemas::DlqRecord = serde_json::from_slice(err.trim_ascii_end()).unwrap();
    assert_eq!(rec.reason, "invalid_json");
    assert_eq!(rec.payload_encoding, ttlc_schemas::PayloadEncoding::Base64);
}

#[test]
fn offline_over_the_demo_mix_rejects_nothing() {
    let input = read(&fixtures().join("demo/mixed.ndjson"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let stats = run_offline(input.as_slice(), &mut out, &mut err).unwrap();
    assert_eq!(stats.rejected, 0, "{}", String::from_utf8_lossy(&err));
    assert_eq!(stats.events, support::demo_lines().len() as u64);
}

/// Values TikTok (or a buggy producer) might send that are outside the contract's ranges or
/// formats: normalization must clamp or drop them, never emit an event the schema refuses.
#[test]
fn odd_values_never_produce_schema_violations() {
    let base: serde_json::Value =
        serde_json::from_slice(&read(&fixtures().join("raw/gift-single.json"))).unwrap();
    let urls = [
        "https://h/a b",
        "https://h/100%",
        "https://h/é",
        "https://h/{x}",
        "javascript:alert(1)",
        "//cdn/x.webp",
        "",
    ];
    let mut cases = Vec::new();
    for url in urls {
        let mut env = base.clone();
        env["data"]["user"]["profilePicture"]["urlList"] = serde_json::json!([url]);
        env["data"]["giftDetails"]["giftImage"]["urlList"] = serde_json::json!([url]);
        cases.push(env);
    }
    for (field, value) in [
        ("repeatCount", serde_json::json!(-5)),
        ("repeatCount", serde_json::json!("9223372036854775807")),
        ("repeatCount", serde_json::json!(0)),
    ] {
        let mut env = base.clone();
        env["data"][field] = value;
        env["data"]["giftDetails"]["diamondCount"] = serde_json::json!(-3);
        cases.push(env);
    }
    let mut like = base.clone();
    like["type"] = "WebcastLikeMessage".into();
    like["data"] = serde_json::json!({"likeCount": 0, "totalLikeCount": -1});
    cases.push(like);
    let mut join = base.clone();
    join["type"] = "WebcastMemberMessage".into();
    join["data"] = serde_json::json!({"memberCount": -7, "action": "JOINED"});
    cases.push(join);
    let mut sub = base.clone();
    sub["type"] = "WebcastSubNotifyMessage".into();
    sub["data"] = serde_json::json!({"subMonth": 0});
    cases.push(sub);
    let mut armies = base.clone();
    armies["type"] = "WebcastLinkMicArmies".into();
    armies["data"] = serde_json::json!({"armies": {"12": {"hostScore": "-40"}}, "triggerReason": "TRIGGER_REASON_BATTLE_END"});
    cases.push(armies);

    for env in cases {
        let bytes = serde_json::to_vec(&env).unwrap();
        if let Err(r) = ttlc_normalize::stage::process(&bytes) {
            panic!("{} rejected ({}): {}\n{env}", env["type"], r.reason, r.error);
        }
    }
}
