//! Reading and checking raw.v1 envelopes.
//!
//! Parsing goes straight into [`RawEnvelope`] (one pass, no intermediate `Value`); only when that
//! fails do we look closer to give the failure its precise category, so the fast path stays fast.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::error::Category;
use ttlc_schemas::RawEnvelope;
use ttlc_schemas::raw::RAW_SCHEMA_VERSION;

use crate::error::NormalizeError;

/// Parses one raw.v1 record and checks the parts of the contract serde cannot express.
pub fn parse_envelope(bytes: &[u8]) -> Result<RawEnvelope, NormalizeError> {
    match serde_json::from_slice::<RawEnvelope>(bytes) {
        Ok(env) => {
            check_envelope(&env)?;
            Ok(env)
        }
        Err(e) => Err(classify(bytes, &e)),
    }
}

/// Checks an already-deserialized envelope against raw.v1.
pub fn check_envelope(env: &RawEnvelope) -> Result<(), NormalizeError> {
    if env.schema_version != RAW_SCHEMA_VERSION {
        return Err(NormalizeError::UnsupportedSchemaVersion(env.schema_version.clone()));
    }
    if env.stream_id.is_empty() {
        return Err(NormalizeError::InvalidEnvelope("streamId is empty".into()));
    }
    if !is_uuid(&env.session_id) {
        return Err(NormalizeError::InvalidEnvelope("sessionId is not a UUID".into()));
    }
    if env.raw_type.is_empty() {
        return Err(NormalizeError::InvalidEnvelope("type is empty".into()));
    }
    if env.seq_no < 0 {
        return Err(NormalizeError::InvalidEnvelope(format!(
            "seqNo must be >= 0, got {}",
            env.seq_no
        )));
    }
    match (&env.data, &env.data_b64) {
        (Some(_), Some(_)) => Err(NormalizeError::InvalidEnvelope(
            "both data and dataB64 are set; exactly one is allowed".into(),
        )),
        (None, None) => Err(NormalizeError::MissingField("data or dataB64".into())),
        _ => Ok(()),
    }
}

/// Gives a failed parse its DLQ category.
fn classify(bytes: &[u8], e: &serde_json::Error) -> NormalizeError {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            NormalizeError::InvalidJson(e.to_string())
        }
        Category::Data => {
            // A record of another version may legitimately have other fields: report the version,
            // not the field it tripped over.
            match probe_version(bytes) {
                Some(version) if version != RAW_SCHEMA_VERSION => {
                    return NormalizeError::UnsupportedSchemaVersion(version.into_owned());
                }
                _ => {}
            }
            let text = e.to_string();
            match missing_field_name(&text) {
                Some(field) => NormalizeError::MissingField(field.to_owned()),
                None => NormalizeError::InvalidEnvelope(text),
            }
        }
    }
}

/// The `schemaVersion` of a record that is JSON but not a valid raw.v1 envelope.
fn probe_version(bytes: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(rename = "schemaVersion", borrow, default)]
        schema_version: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Probe<'_>>(bytes).ok()?.schema_version
}

/// serde reports an absent field as "missing field `name` at line …"; that wording is part of
/// serde's derive output and stable.
fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// The canonical 8-4-4-4-12 hex form; any UUID version is accepted.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("0b6a7c1e-2f3d-4a5b-8c9d-0e1f2a3b4c5d"));
        assert!(!is_uuid("0b6a7c1e2f3d4a5b8c9d0e1f2a3b4c5d"));
        assert!(!is_uuid("0b6a7c1e-2f3d-4a5b-8c9d-0e1f2a3b4c5g"));
    }

    #[test]
    fn missing_field_is_extracted() {
        assert_eq!(
            missing_field_name("missing field `streamId` at line 1 column 20"),
            Some("streamId")
        );
        assert_eq!(missing_field_name("unknown field `x`"), None);
    }
}
