//! Why a raw record could not be normalized.
//!
//! Every variant maps to a short, stable [`NormalizeError::reason`] that becomes the DLQ record's
//! `reason` and a metric label, so operators can count and re-drive failures by category without
//! parsing messages. Messages describe the problem but never echo payload contents beyond field
//! names, so they are safe to log.

/// A raw record that cannot become a UnifiedEvent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The record is not JSON at all (syntax error, truncated, not UTF-8).
    #[error("record is not valid JSON: {0}")]
    InvalidJson(String),
    /// A well-formed envelope of a version this normalizer does not know.
    #[error("unsupported schemaVersion {0:?}: this normalizer reads raw.v1")]
    UnsupportedSchemaVersion(String),
    /// A required envelope field is absent.
    #[error("envelope is missing field `{0}`")]
    MissingField(String),
    /// The envelope is JSON but breaks the raw.v1 contract (wrong types, unknown fields, both
    /// payload forms, a malformed sessionId, …).
    #[error("invalid raw.v1 envelope: {0}")]
    InvalidEnvelope(String),
    /// `dataB64` is not standard base64.
    #[error("dataB64 is not valid base64: {0}")]
    InvalidBase64(String),
    /// `dataB64` decodes to bytes that are not the protobuf message its `type` names.
    #[error("dataB64 is not a valid {raw_type} message: {error}")]
    InvalidProtobuf { raw_type: String, error: String },
    /// The payload decodes but cannot be mapped (a field of the wrong JSON type, a gift without
    /// its price, an ERROR event without a message, …).
    #[error("invalid {raw_type} payload: {error}")]
    InvalidPayload { raw_type: String, error: String },
}

impl NormalizeError {
    /// The stable category used as the DLQ `reason` and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            NormalizeError::InvalidJson(_) => "invalid_json",
            NormalizeError::UnsupportedSchemaVersion(_) => "unsupported_schema_version",
            NormalizeError::MissingField(_) => "missing_field",
            NormalizeError::InvalidEnvelope(_) => "invalid_envelope",
            NormalizeError::InvalidBase64(_) => "invalid_base64",
            NormalizeError::InvalidProtobuf { .. } => "invalid_protobuf",
            NormalizeError::InvalidPayload { .. } => "invalid_payload",
        }
    }

    /// Every reason this error can carry, for dashboards and tests.
    pub const REASONS: [&'static str; 7] = [
        "invalid_json",
        "unsupported_schema_version",
        "missing_field",
        "invalid_envelope",
        "invalid_base64",
        "invalid_protobuf",
        "invalid_payload",
    ];

    pub(crate) fn payload(raw_type: &str, error: impl Into<String>) -> Self {
        NormalizeError::InvalidPayload { raw_type: raw_type.to_owned(), error: error.into() }
    }
}
