//! JSON Schema validation of the JSON contracts, with validators compiled once per process.
//!
//! Normalize validates every event it emits, so the common case must be cheap: [`Validator::is_valid`]
//! runs first and errors are collected only for an invalid document. The schemas are
//! self-contained (only `#/definitions/...` references), so no resolver or network is involved.
//! Formats (`date-time`, `uri`) are asserted, as draft-07 allows, so a bad timestamp or URL is
//! caught here rather than by a consumer.

use std::fmt;
use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::Value;

/// `unified-event.v1.schema.json`.
pub const UNIFIED_JSON_SCHEMA: &str = include_str!("../unified-event.v1.schema.json");
/// `raw.v1.schema.json`.
pub const RAW_JSON_SCHEMA: &str = include_str!("../raw.v1.schema.json");
/// `dlq.v1.schema.json`.
pub const DLQ_JSON_SCHEMA: &str = include_str!("../dlq.v1.schema.json");
/// `action-request.v1.schema.json`.
pub const ACTION_JSON_SCHEMA: &str = include_str!("../action-request.v1.schema.json");

/// At most this many failures are listed: a document of the wrong kind entirely would otherwise
/// produce one error per field, and the first few say enough.
const MAX_LISTED: usize = 8;

/// A document that does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaViolation {
    /// The contract, e.g. `unified-event.v1`.
    pub schema: &'static str,
    /// One entry per failure (up to a small limit), in the validator's order.
    pub errors: Vec<Violation>,
    /// How many failures were left out of `errors`.
    pub more: usize,
}

/// One failing location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer into the document, `""` for the root (e.g. `/payload/giftCount`).
    pub instance_path: String,
    /// What is wrong there. Instance values are masked: documents carry user text (chat messages,
    /// names) that must not reach logs through an error message.
    pub message: String,
}

impl SchemaViolation {
    /// The failing instance paths, `""` for the root.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().map(|e| e.instance_path.as_str())
    }
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document does not match {}: ", self.schema)?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let path = if e.instance_path.is_empty() { "/" } else { &e.instance_path };
            write!(f, "{path}: {}", e.message)?;
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

/// A compiled validator and the contract name it reports.
struct Compiled {
    name: &'static str,
    validator: Validator,
}

impl Compiled {
    fn new(name: &'static str, text: &str) -> Self {
        // Embedded at compile time and compiled by the tests: failure is a build defect.
        let schema: Value = serde_json::from_str(text).expect("embedded JSON Schema is JSON");
        let validator = jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("embedded JSON Schema compiles");
        Compiled { name, validator }
    }

    fn check(&self, doc: &Value) -> Result<(), SchemaViolation> {
        if self.validator.is_valid(doc) {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut more = 0;
        for e in self.validator.iter_errors(doc) {
            if errors.len() < MAX_LISTED {
                errors.push(Violation {
                    instance_path: e.instance_path().to_string(),
                    message: e.masked().to_string(),
                });
            } else {
                more += 1;
            }
        }
        if errors.is_empty() {
            // is_valid and iter_errors disagreeing would be a validator bug; still refuse.
            errors.push(Violation { instance_path: String::new(), message: "invalid".to_owned() });
        }
        Err(SchemaViolation { schema: self.name, errors, more })
    }
}

static UNIFIED: LazyLock<Compiled> =
    LazyLock::new(|| Compiled::new(crate::UNIFIED_SCHEMA, UNIFIED_JSON_SCHEMA));
static RAW: LazyLock<Compiled> =
    LazyLock::new(|| Compiled::new(crate::RAW_SCHEMA, RAW_JSON_SCHEMA));
static DLQ: LazyLock<Compiled> =
    LazyLock::new(|| Compiled::new(crate::DLQ_SCHEMA, DLQ_JSON_SCHEMA));
static ACTION: LazyLock<Compiled> =
    LazyLock::new(|| Compiled::new(crate::ACTION_SCHEMA, ACTION_JSON_SCHEMA));

/// Validates a UnifiedEvent v1 document (`unified-event.v1.schema.json`).
pub fn validate_unified(doc: &Value) -> Result<(), SchemaViolation> {
    UNIFIED.check(doc)
}

/// Validates a raw.v1 envelope (`raw.v1.schema.json`).
pub fn validate_raw(doc: &Value) -> Result<(), SchemaViolation> {
    RAW.check(doc)
}

/// Validates a DLQ record (`dlq.v1.schema.json`).
pub fn validate_dlq(doc: &Value) -> Result<(), SchemaViolation> {
    DLQ.check(doc)
}

/// Validates an ActionRequest in its JSON form (`action-request.v1.schema.json`).
pub fn validate_action(doc: &Value) -> Result<(), SchemaViolation> {
    ACTION.check(doc)
}

/// Compiles every validator now, so the first event does not pay for it (and a broken schema
/// shows at startup).
pub fn warm_up() {
    LazyLock::force(&UNIFIED);
    LazyLock::force(&RAW);
    LazyLock::force(&DLQ);
    LazyLock::force(&ACTION);
}
