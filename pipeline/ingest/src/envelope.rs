//! Turning what a connection sees into raw.v1 envelopes: one per TikTok message (original bytes
//! kept in `dataB64`) and one per lifecycle event (`ControlEvent.*` with a small `data` object).
//!
//! A [`Session`] is one connect attempt: it owns the sessionId (UUID v4) that every envelope of the
//! attempt carries, so eventIds (`streamId:sessionId:seqNo:type`) stay unique across reconnects.

use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};
use ttlc_schemas::raw::RAW_SCHEMA_VERSION;
use ttlc_schemas::{Provider, RawEnvelope, Source};
use ttlc_webcast::Message;

use crate::wire::message_head;

/// `type` of the lifecycle envelope sent once the push socket is open and joined.
pub const CONNECTED: &str = "ControlEvent.CONNECTED";
/// `type` of the lifecycle envelope sent when a connection ends, for any reason.
pub const DISCONNECTED: &str = "ControlEvent.DISCONNECTED";
/// `type` of the lifecycle envelope for failures that do not end (or never began) a connection.
pub const ERROR: &str = "ControlEvent.ERROR";

/// One connect attempt of one channel.
#[derive(Debug)]
pub struct Session {
    stream_id: String,
    session_id: String,
    provider: Provider,
    source: Source,
    /// Lifecycle envelopes have no TikTok id; a per-session counter gives each its own seqNo so
    /// two ERRORs of one session get different eventIds.
    control_seq: AtomicI64,
}

impl Session {
    /// A new session (fresh UUID v4) for `stream_id`.
    pub fn new(stream_id: impl Into<String>, provider: Provider) -> Self {
        Session {
            stream_id: stream_id.into(),
            session_id: uuid::Uuid::new_v4().to_string(),
            provider,
            source: Source::Live,
            control_seq: AtomicI64::new(0),
        }
    }

    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    fn envelope(&self, raw_type: String, seq_no: i64, timestamp: DateTime<Utc>) -> RawEnvelope {
        RawEnvelope {
            schema_version: RAW_SCHEMA_VERSION.into(),
            stream_id: self.stream_id.clone(),
            session_id: self.session_id.clone(),
            source: self.source,
            raw_type,
            seq_no,
            timestamp,
            ingested_at: Utc::now(),
            provider: self.provider,
            data: None,
            data_b64: None,
        }
    }

    /// The envelope of one webcast message. Never fails: a payload whose header cannot be decoded
    /// still becomes an envelope (ingest time as timestamp) so normalize can route it to RAW or the
    /// DLQ; ingest never drops what TikTok sent.
    pub fn message(&self, msg: &Message) -> RawEnvelope {
        let head = message_head(&msg.payload).unwrap_or_default();
        let seq_no = [msg.msg_id, head.msg_id].into_iter().find(|id| *id > 0).unwrap_or(0);
        let now = Utc::now();
        let timestamp = match head.create_time_ms {
            ms if ms > 0 => Utc.timestamp_millis_opt(ms).single().unwrap_or(now),
            _ => now,
        };
        let raw_type =
            if msg.method.is_empty() { "Unknown".to_owned() } else { msg.method.clone() };
        let mut env = self.envelope(raw_type, seq_no, timestamp);
        env.data_b64 = Some(base64::engine::general_purpose::STANDARD.encode(&msg.payload));
        env
    }

    /// The envelope of a message a relay already decoded to JSON (Euler's `{type, data}`):
    /// `data` carries it, seqNo and timestamp come from its `common.msgId`/`common.createTime`
    /// (numbers or decimal strings).
    pub fn json_message(&self, raw_type: &str, data: Map<String, Value>) -> RawEnvelope {
        let common = data.get("common");
        let field = |name: &str| -> Option<i64> {
            match common?.get(name)? {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }
        };
        let seq_no = field("msgId").filter(|id| *id > 0).unwrap_or(0);
        let now = Utc::now();
        let timestamp = field("createTime")
            .filter(|ms| *ms > 0)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or(now);
        let raw_type = if raw_type.is_empty() { "Unknown" } else { raw_type };
        let mut env = self.envelope(raw_type.to_owned(), seq_no, timestamp);
        env.data = Some(data);
        env
    }

    fn control(&self, raw_type: &str, data: Map<String, Value>) -> RawEnvelope {
        let seq = self.control_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut env = self.envelope(raw_type.to_owned(), seq, Utc::now());
        env.data = Some(data);
        env
    }

    /// `ControlEvent.CONNECTED` {roomId, isConnected, provider}.
    pub fn connected(&self) -> RawEnvelope {
        self.control(
            CONNECTED,
            object(json!({
                "roomId": self.stream_id,
                "isConnected": true,
                "provider": self.provider.as_str(),
            })),
        )
    }

    /// `ControlEvent.DISCONNECTED` {code (WebSocket close code), reason, willReconnect}.
    pub fn disconnected(&self, code: u16, reason: &str, will_reconnect: bool) -> RawEnvelope {
        self.control(
            DISCONNECTED,
            object(json!({ "code": code, "reason": reason, "willReconnect": will_reconnect })),
        )
    }

    /// `ControlEvent.ERROR` {message, code}.
    pub fn error(&self, message: &str, code: &str) -> RawEnvelope {
        self.control(ERROR, object(json!({ "message": message, "code": code })))
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use ttlc_webcast::{Common, WebcastChatMessage};

    #[test]
    fn message_envelope_keeps_bytes_and_header_fields() {
        let s = Session::new("7001", Provider::Direct);
        let payload = WebcastChatMessage {
            common: Some(Common {
                msg_id: 5,
                create_time: 1_700_000_000_000,
                ..Default::default()
            }),
            comment: "hello".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let msg = Message {
            method: "WebcastChatMessage".into(),
            payload: payload.clone(),
            msg_id: 77,
            ..Default::default()
        };
        let env = s.message(&msg);
        assert_eq!(env.seq_no, 77);
        assert_eq!(env.raw_type, "WebcastChatMessage");
        assert_eq!(env.timestamp.timestamp_millis(), 1_700_000_000_000);
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(env.data_b64.unwrap()).unwrap();
        assert_eq!(bytes, payload);
        assert!(env.data.is_none());
    }

    #[test]
    fn json_messages_take_ids_and_times_from_common() {
        let s = Session::new("7001", Provider::Euler);
        let data = object(
            json!({"common": {"msgId": "7300000000000000001", "createTime": 1_700_000_000_000i64}, "comment": "hi"}),
        );
        let env = s.json_message("WebcastChatMessage", data);
        assert_eq!(env.seq_no, 7_300_000_000_000_000_001);
        assert_eq!(env.timestamp.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(env.data.unwrap()["comment"], "hi");
        assert!(env.data_b64.is_none());
        let bare = s.json_message("roomInfo", Map::new());
        assert_eq!(bare.seq_no, 0);
    }

    #[test]
    fn garbage_still_becomes_an_envelope() {
        let s = Session::new("7001", Provider::Direct);
        let env = s.message(&Message {
            method: "WebcastWeird".into(),
            payload: vec![0xff; 3],
            msg_id: -4,
            ..Default::default()
        });
        assert_eq!(env.seq_no, 0);
        assert_eq!(env.data_b64.as_deref(), Some("////"));
    }

    #[test]
    fn control_envelopes_get_distinct_seq_numbers_and_valid_json() {
        let s = Session::new("7001", Provider::Direct);
        let a = s.error("x", "E");
        let b = s.error("x", "E");
        assert_ne!(a.seq_no, b.seq_no);
        let d = s.disconnected(1006, "gone", true);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["type"], "ControlEvent.DISCONNECTED");
        assert_eq!(json["data"]["willReconnect"], true);
        assert_eq!(json["data"]["code"], 1006);
        assert_eq!(s.connected().data.unwrap()["provider"], "direct");
    }
}
