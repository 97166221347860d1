//! Replayed events (`type` = `Replay.<EVENTTYPE>`, provider and source `replay`).
//!
//! PostgreSQL keeps the normalized event, not TikTok's bytes, so the replay provider re-publishes
//! each stored UnifiedEvent inside a raw.v1 envelope (`data.unifiedEvent`, plus `data.replayOf`,
//! the original sessionId). Mapping it again from TikTok's format is impossible and unnecessary:
//! the stored event is taken as is and only its identity changes to the replay run's (new
//! sessionId, hence a new eventId), so downstream dedupe never mistakes a replay for the original.

use serde_json::{Map, Value};
use ttlc_schemas::event::ConnectedPayload;
use ttlc_schemas::{EventType, Payload, Provider, RawEnvelope, Source, UnifiedEvent};

use crate::error::NormalizeError;
use crate::mapping::Mapped;

/// The `type` prefix of replayed events.
pub const REPLAY_TYPE_PREFIX: &str = "Replay.";

/// A replayed event's body, plus the event time the stored event carried.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) mapped: Mapped,
    pub(crate) timestamp: chrono::DateTime<chrono::Utc>,
}

/// True when `raw_type` names a replayed event.
pub(crate) fn is_replay(raw_type: &str) -> bool {
    raw_type.starts_with(REPLAY_TYPE_PREFIX)
}

/// Checks the envelope side of the replay contract: only the replay provider publishes
/// `Replay.*` types, always with `source: replay`. A live provider never sends such a type, so
/// one that does is a broken producer, not a TikTok message to pass through as RAW.
pub(crate) fn check_envelope(env: &RawEnvelope) -> Result<(), NormalizeError> {
    if env.provider != Provider::Replay || env.source != Source::Replay {
        return Err(NormalizeError::InvalidEnvelope(format!(
            "{} needs provider and source \"replay\"",
            env.raw_type
        )));
    }
    if env.data.is_none() {
        return Err(NormalizeError::InvalidEnvelope(format!(
            "{} carries its event in `data`, not `dataB64`",
            env.raw_type
        )));
    }
    Ok(())
}

/// Reads `data.unifiedEvent` and keeps what the original event said: type, user, payload and
/// event time. The CONNECTED `provider` is dropped because the contract's enum (direct|euler)
/// describes a live connection, which a replay run is not.
pub(crate) fn map(
    raw_type: &str,
    stream_id: &str,
    mut data: Map<String, Value>,
) -> Result<Replayed, NormalizeError> {
    let invalid = |e: String| NormalizeError::payload(raw_type, e);
    if let Some(of) = data.get("replayOf") {
        if !of.is_string() {
            return Err(invalid("replayOf is not a string".into()));
        }
    }
    let Some(stored) = data.remove("unifiedEvent") else {
        return Err(invalid("replayed event without data.unifiedEvent".into()));
    };
    // serde's message names the failing field, never its value: safe for DLQ records and logs.
    let event: UnifiedEvent = serde_json::from_value(stored)
        .map_err(|e| invalid(format!("data.unifiedEvent is not a UnifiedEvent: {e}")))?;
    let named = raw_type.strip_prefix(REPLAY_TYPE_PREFIX).and_then(EventType::parse);
    if named != Some(event.event_type) {
        return Err(invalid(format!(
            "type {raw_type} does not name the stored event's type {}",
            event.event_type
        )));
    }
    if event.stream_id != stream_id {
        return Err(invalid("data.unifiedEvent belongs to another stream".into()));
    }
    let payload = match event.payload {
        Some(Payload::Connected(c)) => {
            let c = ConnectedPayload { provider: None, ..c };
            // Left out rather than `{}` when the provider was all it said.
            (c.room_id.is_some() || c.is_connected.is_some()).then_some(Payload::Connected(c))
        }
        other => other,
    };
    let mapped = Mapped { event_type: event.event_type, user: event.user, payload };
    Ok(Replayed { mapped, timestamp: event.timestamp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(payload: Value) -> Map<String, Value> {
        let event = json!({
            "schemaVersion": "1",
            "eventId": "4d3b99f8f907e706785c19875d63f1f27e6ca67be8f458275e09f254a7a9bb6e",
            "eventType": "CONNECTED",
            "triggerId": 10,
            "streamId": "7001",
            "sessionId": "3f1c2a9e-8b7d-4c6e-9a1b-2d3e4f5a6b7c",
            "timestamp": "2026-11-20T19:00:00.000Z",
            "source": "live",
            "seqNo": 1,
            "user": {"userId": "0", "uniqueId": "system"},
            "payload": payload,
        });
        let mut data = Map::new();
        data.insert("unifiedEvent".into(), event);
        data
    }

    #[test]
    fn connected_provider_is_dropped_and_an_emptied_payload_left_out() {
        let r = map("Replay.CONNECTED", "7001", stored(json!({"provider": "direct"}))).unwrap();
        assert_eq!(r.mapped.payload, None);
        let r = map(
            "Replay.CONNECTED",
            "7001",
            stored(json!({"provider": "euler", "roomId": "7001", "isConnected": true})),
        )
        .unwrap();
        let Some(Payload::Connected(c)) = r.mapped.payload else { panic!("connected payload") };
        assert_eq!((c.provider, c.room_id.as_deref()), (None, Some("7001")));
    }

    #[test]
    fn type_and_stream_must_match_the_stored_event() {
        let data = stored(json!({"roomId": "7001"}));
        let e = map("Replay.GIFT", "7001", data.clone()).unwrap_err();
        assert_eq!(e.reason(), "invalid_payload");
        let e = map("Replay.CONNECTED", "7002", data).unwrap_err();
        assert_eq!(e.reason(), "invalid_payload");
    }
}
