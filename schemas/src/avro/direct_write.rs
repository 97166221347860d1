//! Writes a UnifiedEvent v1 datum straight into Avro's binary encoding, in schema order. The bytes
//! are exactly what apache-avro writes for the same event (the tests compare them), so any Avro
//! library reads them; skipping the `Value` tree saves an allocation per field.

use chrono::{DateTime, Utc};

use super::CodecError;
use crate::event::{BattleStatus, ConnectedProvider, Payload, UnifiedEvent, User};

/// A zig-zag varint `long` (also `int`, enum indexes and union branches).
fn long(out: &mut Vec<u8>, n: i64) {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    // A `str` never exceeds isize::MAX bytes, so the length fits an i64.
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

fn millis(out: &mut Vec<u8>, ts: &DateTime<Utc>) {
    long(out, ts.timestamp_millis());
}

/// A `["null", T]` union.
fn opt<T>(out: &mut Vec<u8>, v: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => long(out, 0),
        Some(v) => {
            long(out, 1);
            write(out, v);
        }
    }
}

fn opt_string(out: &mut Vec<u8>, v: &Option<String>) {
    opt(out, v.as_deref(), string);
}

fn opt_long(out: &mut Vec<u8>, v: Option<i64>) {
    opt(out, v, long);
}

fn opt_bool(out: &mut Vec<u8>, v: Option<bool>) {
    opt(out, v, boolean);
}

/// One block with every item, then the zero count that ends the array.
fn array<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    if !items.is_empty() {
        long(out, items.len() as i64);
        for item in items {
            write(out, item);
        }
    }
    long(out, 0);
}

/// Appends the datum of a coherent event (the caller checks coherence).
pub(super) fn unified(e: &UnifiedEvent, out: &mut Vec<u8>) -> Result<(), CodecError> {
    string(out, &e.schema_version);
    string(out, &e.event_id);
    long(out, e.event_type as i64);
    long(out, i64::from(e.trigger_id));
    string(out, &e.stream_id);
    string(out, &e.session_id);
    millis(out, &e.timestamp);
    opt(out, e.ingested_at.as_ref(), millis);
    long(out, e.source as i64);
    opt_long(out, e.seq_no);
    user(out, &e.user);
    match &e.payload {
        None => long(out, 0),
        Some(p) => {
            long(out, i64::from(p.event_type().trigger_id()));
            payload(out, p)?;
        }
    }
    Ok(())
}

fn user(out: &mut Vec<u8>, u: &User) {
    string(out, &u.user_id);
    string(out, &u.unique_id);
    opt_string(out, &u.display_name);
    opt_string(out, &u.avatar_url);
    opt_long(out, u.follow_role);
    opt_bool(out, u.is_moderator);
    opt_bool(out, u.is_subscriber);
    opt_long(out, u.team_member_level);
}

fn payload(out: &mut Vec<u8>, p: &Payload) -> Result<(), CodecError> {
    match p {
        Payload::Chat(c) => {
            string(out, &c.message);
            opt(out, c.emotes.as_deref(), |out, list| {
                array(out, list, |out, m| {
                    opt_string(out, &m.emote_id);
                    opt_string(out, &m.emote_image_url);
                    opt_long(out, m.placeholder_index);
                });
            });
            opt_string(out, &c.language);
        }
        Payload::Gift(g) => {
            long(out, g.gift_id);
            string(out, &g.gift_name);
            long(out, g.gift_count);
            long(out, g.coins);
            opt_long(out, g.diamond_count);
            opt_bool(out, g.streak_active);
            opt_bool(out, g.streak_end);
            opt_string(out, &g.gift_image_url);
            opt_bool(out, g.is_gift_streak);
        }
        Payload::Like(l) => {
            long(out, l.like_count);
            long(out, l.total_like_count);
        }
        Payload::Follow(s) | Payload::Share(s) => string(out, &s.display_type),
        Payload::Join(j) => {
            opt_long(out, j.viewer_count);
            opt_long(out, j.action_id);
        }
        Payload::Subscribe(s) => opt_long(out, s.sub_month),
        Payload::Emote(m) => {
            string(out, &m.emote_id);
            opt_string(out, &m.emote_image_url);
            opt_string(out, &m.emote_type);
        }
        Payload::Battle(b) => {
            opt_string(out, &b.battle_id);
            opt(out, b.battle_status, |out, s| {
                let index = match s {
                    BattleStatus::Started => 0,
                    BattleStatus::Updated => 1,
                    BattleStatus::Ended => 2,
                };
                long(out, index);
            });
            opt(out, b.participants.as_deref(), |out, list| {
                array(out, list, |out, p| {
                    opt_string(out, &p.user_id);
                    opt_string(out, &p.unique_id);
                    opt_string(out, &p.display_name);
                    opt_long(out, p.score);
                });
            });
        }
        Payload::Connected(c) => {
            opt_string(out, &c.room_id);
            opt_bool(out, c.is_connected);
            opt(out, c.provider, |out, p| {
                long(out, matches!(p, ConnectedProvider::Euler).into());
            });
        }
        Payload::Disconnected(d) => {
            opt_long(out, d.code);
            opt_string(out, &d.reason);
            opt_bool(out, d.will_reconnect);
        }
        Payload::Error(e) => {
            string(out, &e.message);
            opt_string(out, &e.code);
            opt_string(out, &e.stack);
        }
        Payload::Raw(r) => {
            string(out, &r.raw_type);
            match &r.data {
                None => long(out, 0),
                Some(map) => {
                    long(out, 1);
                    let text = serde_json::to_string(map)
                        .map_err(|source| CodecError::Json { field: "payload.data", source })?;
                    string(out, &text);
                }
            }
        }
    }
    Ok(())
}
