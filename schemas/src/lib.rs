//! The contracts between ttlc's stages, in one place.
//!
//! Each topic's record format has a schema file in this crate's directory, named after the topic or
//! contract (`unified-event.v1.schema.json`, `unified-event.v1.avsc`, `raw.v1.schema.json`, …), and a
//! Rust type here. Tests prove the two agree (fixtures validate, Avro round-trips), so the files stay
//! the single source of truth that downstream teams can read without reading Rust.
//!
//! - [`avro`]: single-object Avro codecs for `unified` and `actions` ([`encode_unified`],
//!   [`decode_unified`], [`encode_action`], [`decode_action`]).
//! - [`validate`]: JSON Schema validators for every JSON contract ([`validate_unified`], …).
//! - The constants below are the values of the `schema` and `content-type` record headers (the
//!   header names themselves live with the Kafka clients in `ttlc-core`).

pub mod action;
pub mod avro;
pub mod dlq;
pub mod event;
pub mod raw;
pub mod time;
pub mod validate;

pub use action::{ActionRequest, ActionType};
pub use avro::{CodecError, decode_action, decode_unified, encode_action, encode_unified};
pub use dlq::{DlqRecord, PayloadEncoding};
pub use event::{EventType, Payload, Source, UnifiedEvent, User};
pub use raw::{Provider, RawEnvelope};
pub use validate::{
    SchemaViolation, Violation, validate_action, validate_dlq, validate_raw, validate_unified,
};

/// Schema name and version of `unified` records (the `schema` header).
pub const UNIFIED_SCHEMA: &str = "unified-event.v1";
/// Schema name and version of `raw` records.
pub const RAW_SCHEMA: &str = "raw.v1";
/// Schema name and version of `actions` records.
pub const ACTION_SCHEMA: &str = "action-request.v1";
/// Schema name and version of `dlq` records.
pub const DLQ_SCHEMA: &str = "dlq.v1";

/// `content-type` header of Avro single-object records (`unified`, `actions`).
pub const CONTENT_TYPE_AVRO: &str = "avro/binary";
/// `content-type` header of JSON records (`raw`, `dlq`).
pub const CONTENT_TYPE_JSON: &str = "application/json";
