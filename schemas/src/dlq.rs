//! The dead-letter record (JSON) written to the `dlq` topic by any stage that cannot process an input.
//!
//! It carries the original bytes and where they came from, so an operator can inspect and re-drive
//! it. `error` is sanitized by the producer: no secrets, no tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How [`DlqRecord::payload`] encodes the original bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    /// The bytes were valid UTF-8 and are stored as text.
    Utf8,
    /// The bytes were not UTF-8 and are stored as standard base64.
    Base64,
}

/// One record in the `dlq` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DlqRecord {
    /// The stage that gave up, e.g. `normalize`.
    pub stage: String,
    /// A short category, e.g. `invalid_json`, `schema_validation`, `retries_exhausted`.
    pub reason: String,
    /// What went wrong, sanitized.
    pub error: String,
    /// The original record value.
    pub payload: String,
    pub payload_encoding: PayloadEncoding,
    /// The record key as UTF-8 text, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(with = "crate::time")]
    pub failed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl DlqRecord {
    /// Stores `bytes` as text when they are UTF-8, else as base64.
    pub fn encode_payload(bytes: &[u8]) -> (String, PayloadEncoding) {
        match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), PayloadEncoding::Utf8),
            Err(_) => {
                use base64::Engine as _;
                (base64::engine::general_purpose::STANDARD.encode(bytes), PayloadEncoding::Base64)
            }
        }
    }
}
