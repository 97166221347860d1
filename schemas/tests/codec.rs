//! The Avro codec's framing and refusals: single-object header per the Avro spec, clear errors for
//! foreign or damaged bytes, and no incoherent event written or read.

// Helpers outside #[test] fns panic on purpose too: a panic is how a test reports.
#![allow(clippy::unwrap_used)]

mod common;

use apache_avro::types::Value as Avro;
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use ttlc_schemas::event::{ChatPayload, GiftPayload, JoinPayload, Payload, SocialPayload};
use ttlc_schemas::{CodecError, EventType, UnifiedEvent, avro, decode_action, decode_unified};
use ttlc_schemas::{encode_action, encode_unified};

/// CRC-64-AVRO exactly as the Avro specification writes it, independent of apache-avro.
fn crc64_avro(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
        }
        *slot = fp;
    }
    data.iter().fold(EMPTY, |fp, b| (fp >> 8) ^ table[((fp ^ u64::from(*b)) & 0xff) as usize])
}

/// Which error a damaged message must produce.
type Expect = fn(&CodecError) -> bool;
/// Turns a coherent event into an incoherent one.
type Mutation = fn(&mut UnifiedEvent);

fn example(name: &str) -> UnifiedEvent {
    serde_json::from_value(load(&examples(&format!("seed-valid/{name}.json")))).unwrap()
}

fn action_example() -> ttlc_schemas::ActionRequest {
    serde_json::from_value(load(&examples("action/webhook.json"))).unwrap()
}

#[test]
fn fingerprints_are_crc64_avro_of_the_canonical_form() {
    let cases = [
        (avro::unified_schema(), avro::unified_fingerprint()),
        (avro::action_schema(), avro::action_fingerprint()),
    ];
    for (schema, fingerprint) in cases {
        assert_eq!(fingerprint, crc64_avro(schema.canonical_form().as_bytes()));
    }
    assert_ne!(avro::unified_fingerprint(), avro::action_fingerprint());
    // The specification's own test vector: the fingerprint of the schema `"int"`.
    assert_eq!(crc64_avro(br#""int""#), 0x7275_d51a_3f39_5c8f);
}

#[test]
fn single_object_header_then_datum() {
    let bytes = encode_unified(&example("gift-single")).unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    assert_eq!(&bytes[2..10], &avro::unified_fingerprint().to_le_bytes());
    // The datum alone decodes with the schema, as any Avro library would read it.
    let mut datum = &bytes[10..];
    let value = apache_avro::from_avro_datum(avro::unified_schema(), &mut datum, None).unwrap();
    assert!(datum.is_empty());
    let Avro::Record(fields) = value else { panic!("not a record") };
    assert_eq!(fields[2], ("eventType".to_owned(), Avro::Enum(1, "GIFT".to_owned())));
}

#[test]
fn damaged_or_foreign_bytes_are_refused_with_a_clear_error() {
    let good = encode_unified(&example("chat-language")).unwrap();
    let action = encode_action(&action_example()).unwrap();

    let mut bad_marker = good.clone();
    bad_marker[0] = 0x4f;
    let mut bad_fp = good.clone();
    bad_fp[9] ^= 0xff;
    let mut trailing = good.clone();
    trailing.push(0);
    let truncated_datum = &good[..good.len() - 3];

    let cases: Vec<(&str, &[u8], Expect)> = vec![
        ("empty", b"", |e| matches!(e, CodecError::Truncated { len: 0 })),
        ("header only, short", &good[..9], |e| matches!(e, CodecError::Truncated { len: 9 })),
        ("bad marker", &bad_marker, |e| matches!(e, CodecError::BadMarker { found: [0x4f, 0x01] })),
        ("json", br#"{"schemaVersion":"1","eventId":"x"}"#, |e| {
            matches!(e, CodecError::BadMarker { .. })
        }),
        ("wrong fingerprint", &bad_fp, |e| matches!(e, CodecError::WrongFingerprint { .. })),
        ("an action, not an event", &action, |e| {
            matches!(e, CodecError::WrongFingerprint { schema: "unified-event.v1", .. })
        }),
        ("trailing byte", &trailing, |e| matches!(e, CodecError::TrailingBytes(1))),
        ("truncated datum", truncated_datum, |e| matches!(e, CodecError::Malformed { .. })),
    ];
    for (what, bytes, expected) in cases {
        match decode_unified(bytes) {
            Ok(ev) => panic!("{what}: decoded {ev:?}"),
            Err(e) => {
                assert!(expected(&e), "{what}: unexpected error {e:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
    let err = decode_unified(&bad_fp).unwrap_err().to_string();
    assert!(err.contains("unknown schema") && err.contains("unified-event.v1"), "{err}");
    assert!(matches!(decode_action(&good), Err(CodecError::WrongFingerprint { .. })));
}

#[test]
fn incoherent_events_are_not_written() {
    let base = example("gift-single");
    let cases: Vec<(&str, Mutation)> = vec![
        ("trigger id", |e| e.trigger_id = 1),
        ("payload of another type", |e| {
            e.payload =
                Some(Payload::Chat(ChatPayload { message: "hi".into(), ..ChatPayload::default() }))
        }),
        ("schema version", |e| e.schema_version = "2".into()),
        ("event id", |e| e.event_id = "E".repeat(64)),
        ("negative seqNo", |e| e.seq_no = Some(-1)),
        ("empty payload", |e| {
            e.event_type = EventType::Join;
            e.trigger_id = 6;
            e.payload = Some(Payload::Join(JoinPayload::default()));
        }),
        ("raw display key", |e| {
            e.event_type = EventType::Follow;
            e.trigger_id = 4;
            e.payload = Some(Payload::Follow(SocialPayload {
                display_type: "pm_main_follow_message_viewer_2".into(),
            }));
        }),
        ("share payload on follow", |e| {
            e.event_type = EventType::Follow;
            e.trigger_id = 4;
            e.payload =
                Some(Payload::Share(SocialPayload { display_type: SocialPayload::SHARE.into() }));
        }),
    ];
    assert!(encode_unified(&base).is_ok());
    for (what, mutate) in cases {
        let mut ev = base.clone();
        mutate(&mut ev);
        match encode_unified(&ev) {
            Ok(_) => panic!("{what}: encoded"),
            Err(e) => assert!(matches!(e, CodecError::Shape(_)), "{what}: {e:?}"),
        }
    }
}

/// Another producer using our schema could still write a payload branch that disagrees with
/// eventType; the decoder refuses it instead of guessing.
#[test]
fn incoherent_datum_written_by_someone_else_is_refused() {
    let bytes = encode_unified(&example("gift-single")).unwrap();
    let mut datum = &bytes[10..];
    let value = apache_avro::from_avro_datum(avro::unified_schema(), &mut datum, None).unwrap();
    let Avro::Record(mut fields) = value else { panic!("not a record") };

    let mut relabel = fields.clone();
    relabel[2].1 = Avro::Enum(0, "CHAT".into());
    relabel[3].1 = Avro::Int(1);
    let mut wrong_trigger = fields.clone();
    wrong_trigger[3].1 = Avro::Int(7);
    fields[1].1 = Avro::String("not-a-sha".into());
    let bad_id = fields;

    for (what, record) in
        [("payload branch", relabel), ("trigger id", wrong_trigger), ("event id", bad_id)]
    {
        let mut msg = bytes[..10].to_vec();
        msg.extend(
            apache_avro::to_avro_datum(avro::unified_schema(), Avro::Record(record)).unwrap(),
        );
        match decode_unified(&msg) {
            Ok(ev) => panic!("{what}: decoded {ev:?}"),
            Err(e) => assert!(matches!(e, CodecError::Shape(_)), "{what}: {e:?}"),
        }
    }
}

/// Avro carries milliseconds, like the JSON form: finer precision is dropped, not rounded, and
/// instants before 1970 survive.
#[test]
fn timestamps_keep_milliseconds() {
    let cases: [(DateTime<Utc>, DateTime<Utc>); 3] = [
        (
            Utc.timestamp_opt(1_763_661_845, 123_999_999).unwrap(),
            Utc.timestamp_opt(1_763_661_845, 123_000_000).unwrap(),
        ),
        (Utc.timestamp_opt(0, 0).unwrap(), Utc.timestamp_opt(0, 0).unwrap()),
        (
            Utc.timestamp_opt(-86_400, 500_000_000).unwrap(),
            Utc.timestamp_opt(-86_400, 500_000_000).unwrap(),
        ),
    ];
    for (input, expected) in cases {
        let mut ev = example("like");
        ev.timestamp = input;
        ev.ingested_at = Some(input);
        let back = decode_unified(&encode_unified(&ev).unwrap()).unwrap();
        assert_eq!((back.timestamp, back.ingested_at), (expected, Some(expected)), "{input}");
    }
}

/// Extremes of every numeric field and unusual text survive the trip.
#[test]
fn extreme_values_round_trip() {
    let mut ev = example("gift-streak-end");
    ev.seq_no = Some(i64::MAX);
    ev.stream_id = String::new();
    ev.user.display_name = Some("名前 \u{0} \"quoted\" 🌹".into());
    ev.user.follow_role = Some(i64::MIN);
    ev.payload = Some(Payload::Gift(GiftPayload {
        gift_id: i64::MAX,
        gift_name: String::new(),
        gift_count: 1,
        coins: i64::MAX,
        diamond_count: Some(0),
        streak_active: Some(false),
        streak_end: Some(true),
        gift_image_url: None,
        is_gift_streak: Some(true),
    }));
    let back = decode_unified(&encode_unified(&ev).unwrap()).unwrap();
    assert_eq!(back, ev);

    let mut raw = example("raw-with-data");
    let Some(Payload::Raw(r)) = &mut raw.payload else { panic!("not raw") };
    r.data = Some(serde_json::Map::new());
    assert_eq!(decode_unified(&encode_unified(&raw).unwrap()).unwrap(), raw);
}
