//! The contracts between ttlc's stages, in one place.
//!
//! Each topic's record format has a schema file in this crate's directory, named after the topic or
//! contract (`unified-event.v1.schema.json`, `unified-event.v1.avsc`, `raw.v1.schema.json`, …), and a
//! Rust type here. Tests prove the two agree (fixtures validate, Avro round-trips), so the files stay
//! the single source of truth that downstream teams can read without reading Rust.

pub mod action;
pub mod dlq;
pub mod event;
pub mod raw;
pub mod time;

pub use action::{ActionRequest, ActionType};
pub use dlq::{DlqRecord, PayloadEncoding};
pub use event::{EventType, Payload, Source, UnifiedEvent, User};
pub use raw::{Provider, RawEnvelope};
