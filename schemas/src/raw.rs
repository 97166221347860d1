//! raw.v1: what ingest publishes to the `raw` topic, one envelope per TikTok message or lifecycle
//! event, keyed by `streamId`.
//!
//! The payload is exactly one of `data` (decoded JSON) or `dataB64` (the original protobuf bytes), so
//! old data can be re-normalized by a newer normalizer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Source;

/// The `schemaVersion` of every raw envelope.
pub const RAW_SCHEMA_VERSION: &str = "raw.v1";

/// Where a raw frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Direct,
    Euler,
    Mock,
    Replay,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Direct => "direct",
            Provider::Euler => "euler",
            Provider::Mock => "mock",
            Provider::Replay => "replay",
        }
    }
}

/// A raw.v1 envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawEnvelope {
    /// Always [`RAW_SCHEMA_VERSION`].
    pub schema_version: String,
    /// TikTok room id.
    pub stream_id: String,
    /// One UUID per connect, reconnect or replay run.
    pub session_id: String,
    pub source: Source,
    /// TikTok message method (`WebcastChatMessage`) or `ControlEvent.CONNECTED|DISCONNECTED|ERROR`.
    #[serde(rename = "type")]
    pub raw_type: String,
    /// TikTok msgId/seqId/logId, or 0.
    pub seq_no: i64,
    /// Event time: TikTok's createTime when present, else ingest time.
    #[serde(with = "crate::time")]
    pub timestamp: DateTime<Utc>,
    #[serde(with = "crate::time")]
    pub ingested_at: DateTime<Utc>,
    pub provider: Provider,
    /// The decoded message (proto3 JSON mapping, lowerCamelCase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// The original protobuf message bytes, standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_b64: Option<String>,
}
