//! The normalize stage: `raw` in, `unified` (Avro) out, bad records to the DLQ.
//!
//! Stateless and per-record: each input becomes exactly one output or one rejection, so the
//! runner's at-least-once bookkeeping needs nothing from us. Every event is checked against the
//! JSON Schema before it is encoded: the contract is enforced where events are made, not
//! discovered by a consumer. Nothing here panics on input; every failure is a [`Rejection`].

use std::future::Future;

use serde_json::Value;
use ttlc_core::kafka::headers;
use ttlc_core::{Disposition, InputRecord, Output, Rejection, Stage, StageError};
use ttlc_schemas::{CONTENT_TYPE_AVRO, UNIFIED_SCHEMA, UnifiedEvent};
use ttlc_topics::Topic;

use crate::{NormalizeError, parse_envelope};

/// DLQ reason for an event the normalizer built but the JSON Schema refused (a normalizer bug or
/// input values outside the contract, e.g. an avatar URL that is not a URI).
pub const REASON_SCHEMA_VALIDATION: &str = "schema_validation";
/// DLQ reason for an event the Avro codec refused.
pub const REASON_AVRO_ENCODE: &str = "avro_encode";
/// DLQ reason for a record without a value (a tombstone has no event in it).
pub const REASON_EMPTY_RECORD: &str = "empty_record";

/// One successfully normalized record.
#[derive(Debug)]
pub struct Accepted {
    pub event: UnifiedEvent,
    /// The event as JSON, already validated against `unified-event.v1.schema.json`.
    pub json: Value,
    /// The event as an Avro single-object message.
    pub avro: Vec<u8>,
}

/// Runs one raw record through parse → normalize → validate → encode.
pub fn process(bytes: &[u8]) -> Result<Accepted, Rejection> {
    let mut env = parse_envelope(bytes).map_err(|e| rejection(&e, None, None))?;
    let event = match crate::normalize_checked(&mut env) {
        Ok(event) => event,
        Err(e) => return Err(rejection(&e, Some(&env.raw_type), Some(&env.session_id))),
    };
    let context = |reason: &'static str, error: String| Rejection {
        reason,
        error,
        raw_type: Some(env.raw_type.clone()),
        session_id: Some(event.session_id.clone()),
        event_id: Some(event.event_id.clone()),
    };
    let json = match serde_json::to_value(&event) {
        Ok(json) => json,
        Err(e) => return Err(context(REASON_SCHEMA_VALIDATION, e.to_string())),
    };
    if let Err(violation) = ttlc_schemas::validate_unified(&json) {
        return Err(context(REASON_SCHEMA_VALIDATION, violation.to_string()));
    }
    let avro = match ttlc_schemas::encode_unified(&event) {
        Ok(avro) => avro,
        Err(e) => return Err(context(REASON_AVRO_ENCODE, e.to_string())),
    };
    Ok(Accepted { event, json, avro })
}

fn rejection(e: &NormalizeError, raw_type: Option<&str>, session_id: Option<&str>) -> Rejection {
    Rejection {
        reason: e.reason(),
        error: e.to_string(),
        raw_type: raw_type.map(str::to_owned),
        session_id: session_id.map(str::to_owned),
        event_id: None,
    }
}

/// The `normalize` stage (consumer group "normalize", input `raw`, output `unified`).
#[derive(Debug, Default)]
pub struct NormalizeStage {
    _private: (),
}

impl NormalizeStage {
    /// Compiles the JSON Schema validators now, so a broken schema shows at startup and the first
    /// batch does not pay for compilation.
    pub fn new() -> Self {
        ttlc_schemas::validate::warm_up();
        NormalizeStage { _private: () }
    }

    /// The disposition for one input record.
    pub fn handle_record(record: &InputRecord) -> Disposition {
        let Some(bytes) = record.payload.as_deref() else {
            return Disposition::Reject(Rejection::new(REASON_EMPTY_RECORD, "record has no value"));
        };
        match process(bytes) {
            Ok(accepted) => Disposition::Emit(vec![output(accepted)]),
            Err(rejection) => Disposition::Reject(rejection),
        }
    }
}

/// The `unified` record: keyed by streamId so per-channel order holds, traced by eventId.
fn output(a: Accepted) -> Output {
    let headers = vec![
        (headers::CONTENT_TYPE.to_owned(), CONTENT_TYPE_AVRO.as_bytes().to_vec()),
        (headers::SCHEMA.to_owned(), UNIFIED_SCHEMA.as_bytes().to_vec()),
        (headers::SCHEMA_VERSION.to_owned(), a.event.schema_version.clone().into_bytes()),
        (headers::TRACE_ID.to_owned(), a.event.event_id.clone().into_bytes()),
    ];
    Output { topic: Topic::Unified, key: a.event.stream_id.into_bytes(), payload: a.avro, headers }
}

impl Stage for NormalizeStage {
    fn name(&self) -> &'static str {
        "normalize"
    }

    fn inputs(&self) -> Vec<Topic> {
        vec![Topic::Raw]
    }

    fn handle(
        &mut self,
        batch: &[InputRecord],
    ) -> impl Future<Output = Result<Vec<Disposition>, StageError>> + Send {
        // CPU-only work: done before the future is returned, which then resolves at once.
        let dispositions = batch.iter().map(Self::handle_record).collect();
        std::future::ready(Ok(dispositions))
    }
}
