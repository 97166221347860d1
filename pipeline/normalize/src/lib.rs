//! raw.v1 → UnifiedEvent v1.
//!
//! The library is pure: bytes or an envelope in, an event or a categorized error out; no I/O, no
//! clock, no randomness, so the same input always gives the same event (and the same `eventId`,
//! which makes re-delivery and re-normalization idempotent downstream). The `stage` module wires
//! it into the pipeline runner and `offline` runs it over NDJSON files; neither adds logic.
//!
//! Both payload forms are read: `data` (decoded JSON, module `from_json`) and `dataB64` (original
//! protobuf bytes, module `from_proto`). They only extract facts; the rules live once, in module
//! `mapping`. Unknown message types are never dropped: they become RAW events with their data.
//! Replayed events (`Replay.<EVENTTYPE>`, module `replay`) carry a stored UnifiedEvent and only
//! get the replay run's identity.
//!
//! Entry points: [`normalize_bytes`] (the stage's hot path), [`normalize`] / [`normalize_owned`]
//! for an envelope already parsed, [`event_id`] for the dedupe key, and [`NormalizeError::reason`]
//! for the DLQ category of a failure.

mod envelope;
mod error;
mod from_json;
mod from_proto;
mod json;
mod kind;
mod lifecycle;
mod mapping;
pub mod offline;
mod replay;
pub mod stage;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use ttlc_schemas::event::SCHEMA_VERSION;
use ttlc_schemas::{Provider, RawEnvelope, UnifiedEvent};

pub use envelope::{check_envelope, parse_envelope};
pub use error::NormalizeError;
pub use offline::{OfflineStats, run_offline};
pub use replay::REPLAY_TYPE_PREFIX;
pub use stage::NormalizeStage;

use crate::json::Obj;
use crate::kind::Kind;
use crate::mapping::Mapped;

/// The dedupe key: lowercase hex SHA-256 of `streamId:sessionId:seqNo:type`.
///
/// Same input, same id; a replay gets new ids because it runs under a new sessionId.
pub fn event_id(stream_id: &str, session_id: &str, seq_no: i64, raw_type: &str) -> String {
    let mut h = Sha256::new();
    h.update(stream_id.as_bytes());
    h.update(b":");
    h.update(session_id.as_bytes());
    h.update(b":");
    // Formatted on the stack: this runs once per event and should not allocate.
    let mut buf = [0u8; 20];
    h.update(format_i64(seq_no, &mut buf));
    h.update(b":");
    h.update(raw_type.as_bytes());
    // Hex by nibble into a sized String: `hex::encode` goes char by char and shows in profiles.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in h.finalize() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Decimal digits of `n` (with a leading `-` when negative) written into the end of `buf`.
fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Normalizes one envelope, borrowing it (RAW passthrough copies its data).
pub fn normalize(env: &RawEnvelope) -> Result<UnifiedEvent, NormalizeError> {
    check_envelope(env)?;
    if replay::is_replay(&env.raw_type) {
        replay::check_envelope(env)?;
        let data = env.data.clone().unwrap_or_default();
        let r = replay::map(&env.raw_type, &env.stream_id, data)?;
        return Ok(assemble_replay(env.stream_id.clone(), env.session_id.clone(), env, r));
    }
    let kind = Kind::of(&env.raw_type);
    let mapped = match (&env.data, &env.data_b64) {
        (Some(data), _) => map_json(kind, &env.raw_type, env.provider, Json::Borrowed(data))?,
        (None, Some(b64)) => from_proto::map(kind, &env.raw_type, b64)?,
        (None, None) => return Err(NormalizeError::MissingField("data or dataB64".into())),
    };
    Ok(assemble(env.stream_id.clone(), env.session_id.clone(), &env.raw_type, env, mapped))
}

/// Normalizes one envelope it may consume (no copies of ids or RAW data).
pub fn normalize_owned(mut env: RawEnvelope) -> Result<UnifiedEvent, NormalizeError> {
    check_envelope(&env)?;
    normalize_checked(&mut env)
}

/// Parses and normalizes one raw.v1 record: the whole hot path of the normalize stage.
pub fn normalize_bytes(bytes: &[u8]) -> Result<UnifiedEvent, NormalizeError> {
    let mut env = parse_envelope(bytes)?;
    normalize_checked(&mut env)
}

/// Normalizes a checked envelope, taking its data and ids. On error the ids and `type` are still
/// in place, so callers can put them on the DLQ record.
pub(crate) fn normalize_checked(env: &mut RawEnvelope) -> Result<UnifiedEvent, NormalizeError> {
    if replay::is_replay(&env.raw_type) {
        replay::check_envelope(env)?;
        let data = env.data.take().unwrap_or_default();
        let r = replay::map(&env.raw_type, &env.stream_id, data)?;
        let stream_id = std::mem::take(&mut env.stream_id);
        let session_id = std::mem::take(&mut env.session_id);
        return Ok(assemble_replay(stream_id, session_id, env, r));
    }
    let kind = Kind::of(&env.raw_type);
    let mapped = match (env.data.take(), &env.data_b64) {
        (Some(data), _) => map_json(kind, &env.raw_type, env.provider, Json::Owned(data))?,
        (None, Some(b64)) => from_proto::map(kind, &env.raw_type, b64)?,
        (None, None) => return Err(NormalizeError::MissingField("data or dataB64".into())),
    };
    let stream_id = std::mem::take(&mut env.stream_id);
    let session_id = std::mem::take(&mut env.session_id);
    Ok(assemble(stream_id, session_id, &env.raw_type, env, mapped))
}

/// The `data` object, owned when the caller could give it up.
enum Json<'a> {
    Borrowed(&'a Map<String, Value>),
    Owned(Map<String, Value>),
}

fn map_json(
    kind: Kind,
    raw_type: &str,
    provider: Provider,
    data: Json<'_>,
) -> Result<Mapped, NormalizeError> {
    let invalid = |e: json::Invalid| NormalizeError::payload(raw_type, e.0);
    let map = match &data {
        Json::Borrowed(m) => *m,
        Json::Owned(m) => m,
    };
    let o = Obj::new(map);
    if matches!(kind, Kind::Connected | Kind::Disconnected | Kind::Error) {
        return lifecycle::map(kind, o, provider).map_err(invalid);
    }
    match from_json::map(kind, o).map_err(invalid)? {
        Some(m) => Ok(m),
        None => {
            let data = match data {
                Json::Borrowed(m) => m.clone(),
                Json::Owned(m) => m,
            };
            Ok(from_json::raw(raw_type, data))
        }
    }
}

/// Puts the envelope's identity and times around a mapped body. Timestamps always come from the
/// envelope: ingest already chose TikTok's createTime or its own receive time.
fn assemble(
    stream_id: String,
    session_id: String,
    raw_type: &str,
    env: &RawEnvelope,
    mapped: Mapped,
) -> UnifiedEvent {
    UnifiedEvent {
        schema_version: SCHEMA_VERSION.to_owned(),
        event_id: event_id(&stream_id, &session_id, env.seq_no, raw_type),
        event_type: mapped.event_type,
        trigger_id: mapped.event_type.trigger_id(),
        stream_id,
        session_id,
        timestamp: env.timestamp,
        ingested_at: Some(env.ingested_at),
        source: env.source,
        seq_no: Some(env.seq_no),
        user: mapped.user,
        payload: mapped.payload,
    }
}

/// A replayed event under the replay run's identity; the event time stays the stored event's.
fn assemble_replay(
    stream_id: String,
    session_id: String,
    env: &RawEnvelope,
    r: replay::Replayed,
) -> UnifiedEvent {
    let mut event = assemble(stream_id, session_id, &env.raw_type, env, r.mapped);
    event.timestamp = r.timestamp;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_matches_the_documented_formula() {
        let id = event_id("7301", "0b6a7c1e-2f3d-4a5b-8c9d-0e1f2a3b4c5d", 42, "WebcastChatMessage");
        let expected = hex::encode(Sha256::digest(
            b"7301:0b6a7c1e-2f3d-4a5b-8c9d-0e1f2a3b4c5d:42:WebcastChatMessage",
        ));
        assert_eq!(id, expected);
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn integer_formatting() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 12345, i64::MAX, -1, i64::MIN] {
            assert_eq!(format_i64(n, &mut buf), n.to_string().as_bytes());
        }
    }
}
