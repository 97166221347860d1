//! The direct UnifiedEvent codec against apache-avro's generic one (`avro::reference`): the same
//! bytes out for every fixture and for thousands of generated events covering every payload type,
//! option and extreme value; the same event back from either decoder; and on damaged bytes the
//! direct decoder never accepts what apache-avro refuses, nor decodes anything differently.

// Helpers outside #[test] fns panic on purpose too: a panic is how a test reports.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::DateTime;
use common::*;
use serde_json::json;
use ttlc_schemas::avro::reference;
use ttlc_schemas::event::*;
use ttlc_schemas::{CodecError, EventType, UnifiedEvent, decode_unified, encode_unified};

fn fixture_events() -> Vec<(String, UnifiedEvent)> {
    let mut files = json_files_nonempty(&examples("seed-valid"));
    files.extend(json_files_nonempty(&workspace_dir().join("fixtures/unified")));
    files
        .into_iter()
        .map(|p| {
            let event = serde_json::from_value(load(&p)).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), event)
        })
        .collect()
}

/// Both encoders write the same bytes, and both decoders read either's bytes back to the event.
fn assert_agree(what: &str, event: &UnifiedEvent) {
    let direct = encode_unified(event).unwrap_or_else(|e| panic!("{what}: direct encode: {e}"));
    let generic = reference::encode_unified(event).unwrap();
    assert_eq!(direct, generic, "{what}: the direct encoder wrote different bytes");
    assert_eq!(&decode_unified(&generic).unwrap(), event, "{what}: direct decode");
    assert_eq!(&reference::decode_unified(&direct).unwrap(), event, "{what}: reference decode");
}

#[test]
fn fixtures_encode_to_the_same_bytes_and_decode_back() {
    let events = fixture_events();
    assert!(events.len() > 40, "too few fixtures: {}", events.len());
    for (name, event) in &events {
        assert_agree(name, event);
    }
}

/// A small deterministic generator (xorshift64*): reproducible without a dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
    /// Small, large and extreme values, negative ones included: every varint length.
    fn long(&mut self) -> i64 {
        match self.below(6) {
            0 => 0,
            1 => i64::MAX,
            2 => i64::MIN,
            3 => self.below(200) as i64 - 100,
            4 => self.next() as i64,
            _ => (self.next() >> self.below(64)) as i64,
        }
    }
    fn opt_long(&mut self) -> Option<i64> {
        self.coin().then(|| self.long())
    }
    fn opt_bool(&mut self) -> Option<bool> {
        self.coin().then(|| self.coin())
    }
    fn string(&mut self) -> String {
        const PIECES: [&str; 6] = ["a", "Zß", "🎁", "\u{0}", "long text with spaces ", "\""];
        let n = match self.below(4) {
            0 => 0,
            1 => 1,
            2 => 10,
            _ => 120,
        };
        (0..n).map(|_| PIECES[self.below(PIECES.len() as u64) as usize]).collect()
    }
    fn opt_string(&mut self) -> Option<String> {
        self.coin().then(|| self.string())
    }
    fn millis(&mut self) -> DateTime<chrono::Utc> {
        let ms = self.below(8_000_000_000_000) as i64 - 1_000_000_000_000;
        DateTime::from_timestamp_millis(ms).unwrap()
    }
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> T) -> Option<Vec<T>> {
        self.coin().then(|| (0..self.below(4)).map(|_| item(self)).collect())
    }

    fn payload(&mut self, ty: EventType) -> Payload {
        match ty {
            EventType::Chat => Payload::Chat(ChatPayload {
                message: self.string(),
                emotes: self.list(|g| ChatEmote {
                    emote_id: g.opt_string(),
                    emote_image_url: g.opt_string(),
                    placeholder_index: g.opt_long(),
                }),
                language: self.opt_string(),
            }),
            EventType::Gift => Payload::Gift(GiftPayload {
                gift_id: self.long(),
                gift_name: self.string(),
                gift_count: self.long(),
                coins: self.long(),
                diamond_count: self.opt_long(),
                streak_active: self.opt_bool(),
                streak_end: self.opt_bool(),
                gift_image_url: self.opt_string(),
                is_gift_streak: self.opt_bool(),
            }),
            EventType::Like => Payload::Like(LikePayload {
                like_count: self.long(),
                total_like_count: self.long(),
            }),
            EventType::Follow => {
                Payload::Follow(SocialPayload { display_type: SocialPayload::FOLLOW.into() })
            }
            EventType::Share => {
                Payload::Share(SocialPayload { display_type: SocialPayload::SHARE.into() })
            }
            EventType::Join => Payload::Join(JoinPayload {
                viewer_count: Some(self.long()),
                action_id: self.opt_long(),
            }),
            EventType::Subscribe => Payload::Subscribe(SubscribePayload { sub_month: Some(3) }),
            EventType::Emote => Payload::Emote(EmotePayload {
                emote_id: self.string(),
                emote_image_url: self.opt_string(),
                emote_type: self.opt_string(),
            }),
            EventType::Battle => Payload::Battle(BattlePayload {
                battle_id: Some(self.string()),
                battle_status: self.coin().then(|| {
                    [BattleStatus::Started, BattleStatus::Updated, BattleStatus::Ended]
                        [self.below(3) as usize]
                }),
                participants: self.list(|g| BattleParticipant {
                    user_id: g.opt_string(),
                    unique_id: g.opt_string(),
                    display_name: g.opt_string(),
                    score: g.opt_long(),
                }),
            }),
            EventType::Connected => Payload::Connected(ConnectedPayload {
                room_id: Some(self.string()),
                is_connected: self.opt_bool(),
                provider: self.coin().then(|| {
                    if self.coin() { ConnectedProvider::Direct } else { ConnectedProvider::Euler }
                }),
            }),
            EventType::Disconnected => Payload::Disconnected(DisconnectedPayload {
                code: Some(self.long()),
                reason: self.opt_string(),
                will_reconnect: self.opt_bool(),
            }),
            EventType::Error => Payload::Error(ErrorPayload {
                message: self.string(),
                code: self.opt_string(),
                stack: self.opt_string(),
            }),
            EventType::Raw => Payload::Raw(RawPayload {
                raw_type: self.string(),
                data: self.coin().then(|| {
                    let v =
                        json!({"n": self.long(), "s": self.string(), "a": [1, null, {"x": true}]});
                    v.as_object().unwrap().clone()
                }),
            }),
        }
    }

    fn event(&mut self) -> UnifiedEvent {
        let event_type = EventType::ALL[self.below(13) as usize];
        UnifiedEvent {
            schema_version: "1".into(),
            event_id: format!("{:016x}{:016x}{:016x}{:016x}", self.next(), 1, 2, self.next()),
            event_type,
            trigger_id: event_type.trigger_id(),
            stream_id: self.string(),
            session_id: self.string(),
            timestamp: self.millis(),
            ingested_at: self.coin().then(|| self.millis()),
            source: if self.coin() { Source::Live } else { Source::Replay },
            seq_no: self.coin().then(|| self.long().max(0)),
            user: User {
                user_id: self.string(),
                unique_id: self.string(),
                display_name: self.opt_string(),
                avatar_url: self.opt_string(),
                follow_role: self.opt_long(),
                is_moderator: self.opt_bool(),
                is_subscriber: self.opt_bool(),
                team_member_level: self.opt_long(),
            },
            payload: (self.below(8) != 0).then(|| self.payload(event_type)),
        }
    }
}

#[test]
fn generated_events_encode_to_the_same_bytes_and_decode_back() {
    let mut g = Gen(0x7474_6c63_5eed);
    let mut per_type = [0usize; 13];
    for i in 0..5_000 {
        let event = g.event();
        per_type[event.event_type as usize] += 1;
        assert_agree(&format!("generated event {i}: {event:?}"), &event);
    }
    assert!(per_type.iter().all(|n| *n > 200), "every type generated: {per_type:?}");
}

/// Truncation and single-byte damage at every position of every fixture message: the direct
/// decoder never accepts what apache-avro refuses, and decodes what both accept identically.
///
/// The one difference is deliberate: apache-avro 0.21 reads end-of-input at a union index, string
/// or boolean as null (so a truncated message decodes to an event with fields missing); the direct
/// decoder refuses it with "the datum ends ..." / "runs past the end".
#[test]
fn damaged_messages_get_the_same_verdict_from_both_decoders() {
    let mut compared = 0usize;
    let mut truncation_refused = 0usize;
    for (name, event) in fixture_events() {
        let good = encode_unified(&event).unwrap();
        let mut variants: Vec<(String, Vec<u8>)> = (10..good.len())
            .map(|len| (format!("truncated to {len}"), good[..len].to_vec()))
            .collect();
        for pos in 10..good.len() {
            for byte in [0x00, 0x01, 0x02, 0x1a, 0x7f, 0x80, 0xfe, 0xff, good[pos] ^ 0x40] {
                let mut bad = good.clone();
                bad[pos] = byte;
                variants.push((format!("byte {pos} = {byte:#04x}"), bad));
            }
        }
        for (what, bytes) in variants {
            compared += 1;
            match (decode_unified(&bytes), reference::decode_unified(&bytes)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}, {what}: decoded differently"),
                (Err(e), Err(_)) => assert!(
                    matches!(
                        e,
                        CodecError::Malformed { .. }
                            | CodecError::TrailingBytes(_)
                            | CodecError::Shape(_)
                            | CodecError::Json { .. }
                    ),
                    "{name}, {what}: unexpected error kind {e:?}"
                ),
                (Ok(a), Err(e)) => {
                    panic!("{name}, {what}: apache-avro refuses ({e}), direct read {a:?}")
                }
                (Err(CodecError::Malformed { reason, .. }), Ok(_))
                    if reason.starts_with("the datum ends")
                        || reason.ends_with("past the end of the datum") =>
                {
                    truncation_refused += 1;
                }
                (Err(e), Ok(b)) => {
                    panic!("{name}, {what}: direct refuses ({e}), apache-avro read {b:?}")
                }
            }
        }
    }
    assert!(compared > 10_000, "only {compared} damaged messages");
    println!(
        "{compared} damaged messages; {truncation_refused} read by apache-avro as null-padded"
    );
}

#[test]
fn malformed_datum_errors_say_where_and_what() {
    let event = fixture_events().into_iter().find(|(n, _)| n == "gift-single.json").unwrap().1;
    let good = encode_unified(&event).unwrap();
    // Byte 10 starts schemaVersion's length; 0x7f is -64 in zig-zag: a negative length.
    let mut bad = good.clone();
    bad[10] = 0x7f;
    let err = decode_unified(&bad).unwrap_err();
    assert!(matches!(err, CodecError::Malformed { field: "schemaVersion", at: 11, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "malformed Avro datum at byte 11 (schemaVersion): a string has a negative length"
    );
    let err = decode_unified(&good[..good.len() - 1]).unwrap_err().to_string();
    assert!(err.starts_with("malformed Avro datum at byte"), "{err}");
}
