//! Avro codecs for the `unified` and `actions` topics, in Avro single-object encoding.
//!
//! A message is `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the schema's
//! canonical form, then the binary datum. The fingerprint lets any consumer (ours or a downstream
//! team's) tell which schema wrote a record without a registry, and lets us refuse records written
//! with another schema instead of mis-decoding them.
//!
//! UnifiedEvent, the hot path of every stage, is read and written directly in Avro's binary
//! encoding ([`direct_read`], [`direct_write`]): walking apache-avro's `Value` tree cost about half
//! of archive-ch's time. The `Value` path stays as [`reference`], an independent implementation the
//! tests hold the direct codec to, byte for byte. ActionRequest (low volume) uses the `Value` path
//! only. Values are built by hand rather than through serde: the payload union holds one record per
//! event type, and choosing the branch explicitly from `eventType` is unambiguous.
//!
//! Timestamps are `timestamp-millis`: sub-millisecond precision is dropped, exactly as the JSON form
//! (see [`crate::time`]) drops it, so JSON → Avro → JSON is lossless.

mod direct_read;
mod direct_write;
mod value_in;
mod value_out;

use std::cell::RefCell;
use std::sync::LazyLock;

use apache_avro::types::Value as Avro;
use apache_avro::{GenericSingleObjectReader, GenericSingleObjectWriter, Schema};
use chrono::{DateTime, Utc};

use crate::action::ActionRequest;
use crate::event::UnifiedEvent;

/// The UnifiedEvent v1 Avro schema text (`unified-event.v1.avsc`).
pub const UNIFIED_AVSC: &str = include_str!("../../unified-event.v1.avsc");
/// The ActionRequest v1 Avro schema text (`action-request.v1.avsc`).
pub const ACTION_AVSC: &str = include_str!("../../action-request.v1.avsc");

/// The two bytes that start every single-object encoded message.
pub const SINGLE_OBJECT_MARKER: [u8; 2] = [0xC3, 0x01];
/// Marker plus fingerprint.
const HEADER_LEN: usize = 10;

/// Why a record could not be encoded or decoded. None of these are worth retrying: the input is
/// wrong, so it belongs in the DLQ.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("{len} bytes are too few for an Avro single-object message (header alone is 10)")]
    Truncated { len: usize },
    #[error("not an Avro single-object message: starts with {found:02x?}, expected [c3, 01]")]
    BadMarker { found: [u8; 2] },
    #[error(
        "written with an unknown schema: fingerprint {found:016x}, expected {expected:016x} \
         ({schema})"
    )]
    WrongFingerprint { schema: &'static str, expected: u64, found: u64 },
    #[error("{0} trailing bytes after the Avro datum")]
    TrailingBytes(usize),
    #[error("Avro: {0}")]
    Avro(#[source] Box<apache_avro::Error>),
    /// The direct decoder found bytes that are not a valid datum of the schema.
    #[error("malformed Avro datum at byte {at} ({field}): {reason}")]
    Malformed { field: &'static str, at: usize, reason: &'static str },
    /// The datum decoded, but its shape is not what our schema promises (e.g. payload branch and
    /// eventType disagree), or the Rust value is incoherent and must not be written.
    #[error("{0}")]
    Shape(String),
    #[error("embedded JSON field {field}: {source}")]
    Json {
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl From<apache_avro::Error> for CodecError {
    fn from(e: apache_avro::Error) -> Self {
        CodecError::Avro(Box::new(e))
    }
}

fn shape(msg: impl Into<String>) -> CodecError {
    CodecError::Shape(msg.into())
}

/// One parsed schema with what encoding and decoding need, built once.
struct Codec {
    name: &'static str,
    schema: Schema,
    header: [u8; HEADER_LEN],
    reader: GenericSingleObjectReader,
}

impl Codec {
    fn new(name: &'static str, text: &str) -> Self {
        // The text is embedded at compile time and parsed by the tests, so failure here is a
        // build defect, not a runtime condition.
        let schema = Schema::parse_str(text).expect("embedded Avro schema parses");
        let fp = schema.fingerprint::<apache_avro::rabin::Rabin>();
        let mut header = [0u8; HEADER_LEN];
        header[..2].copy_from_slice(&SINGLE_OBJECT_MARKER);
        header[2..].copy_from_slice(&fp.bytes[..8]);
        let reader =
            GenericSingleObjectReader::new(schema.clone()).expect("embedded Avro schema resolves");
        Codec { name, schema, header, reader }
    }

    fn fingerprint(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.header[2..]);
        u64::from_le_bytes(b)
    }

    /// Checks the header ourselves so a wrong marker and a foreign schema get distinct, readable
    /// errors; returns the datum.
    fn datum<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], CodecError> {
        if bytes.len() < HEADER_LEN {
            return Err(CodecError::Truncated { len: bytes.len() });
        }
        if bytes[..2] != SINGLE_OBJECT_MARKER {
            return Err(CodecError::BadMarker { found: [bytes[0], bytes[1]] });
        }
        if bytes[..HEADER_LEN] != self.header {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[2..HEADER_LEN]);
            return Err(CodecError::WrongFingerprint {
                schema: self.name,
                expected: self.fingerprint(),
                found: u64::from_le_bytes(b),
            });
        }
        Ok(&bytes[HEADER_LEN..])
    }

    /// Decodes through apache-avro into a `Value` tree.
    fn decode_value(&self, bytes: &[u8]) -> Result<Avro, CodecError> {
        self.datum(bytes)?;
        // apache-avro's reader checks the header again and reads on from it.
        let mut rest = bytes;
        let value = self.reader.read_value(&mut rest)?;
        if !rest.is_empty() {
            return Err(CodecError::TrailingBytes(rest.len()));
        }
        Ok(value)
    }
}

static UNIFIED: LazyLock<Codec> = LazyLock::new(|| Codec::new(crate::UNIFIED_SCHEMA, UNIFIED_AVSC));
static ACTION: LazyLock<Codec> = LazyLock::new(|| Codec::new(crate::ACTION_SCHEMA, ACTION_AVSC));

thread_local! {
    // The writer keeps the resolved schema and a scratch buffer; it needs `&mut`, so one per thread
    // instead of a lock on the hot path.
    static ACTION_WRITER: RefCell<GenericSingleObjectWriter> = RefCell::new(
        GenericSingleObjectWriter::new_with_capacity(&ACTION.schema, 256)
            .expect("embedded Avro schema resolves"),
    );
}

/// The parsed UnifiedEvent v1 Avro schema.
pub fn unified_schema() -> &'static Schema {
    &UNIFIED.schema
}

/// The CRC-64-AVRO (Rabin) fingerprint of the UnifiedEvent v1 schema's canonical form; written
/// little-endian after the marker.
pub fn unified_fingerprint() -> u64 {
    UNIFIED.fingerprint()
}

/// The parsed ActionRequest v1 Avro schema.
pub fn action_schema() -> &'static Schema {
    &ACTION.schema
}

/// The CRC-64-AVRO (Rabin) fingerprint of the ActionRequest v1 schema's canonical form.
pub fn action_fingerprint() -> u64 {
    ACTION.fingerprint()
}

/// Encodes a UnifiedEvent as an Avro single-object message. Refuses an incoherent event (payload
/// or triggerId not matching eventType).
pub fn encode_unified(event: &UnifiedEvent) -> Result<Vec<u8>, CodecError> {
    event.check_coherent().map_err(CodecError::Shape)?;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&UNIFIED.header);
    direct_write::unified(event, &mut out)?;
    Ok(out)
}

/// Decodes an Avro single-object message written with the UnifiedEvent v1 schema.
pub fn decode_unified(bytes: &[u8]) -> Result<UnifiedEvent, CodecError> {
    let datum = UNIFIED.datum(bytes)?;
    let event = direct_read::unified(datum, HEADER_LEN)?;
    // Another writer with our schema could still have written an incoherent event.
    event.check_coherent().map_err(CodecError::Shape)?;
    Ok(event)
}

/// Encodes an ActionRequest as an Avro single-object message.
pub fn encode_action(action: &ActionRequest) -> Result<Vec<u8>, CodecError> {
    let value = value_out::action(action)?;
    let mut out = Vec::with_capacity(256);
    ACTION_WRITER.with_borrow_mut(|w| w.write_value_ref(&value, &mut out))?;
    Ok(out)
}

/// Decodes an Avro single-object message written with the ActionRequest v1 schema.
pub fn decode_action(bytes: &[u8]) -> Result<ActionRequest, CodecError> {
    value_in::action(ACTION.decode_value(bytes)?)
}

/// The UnifiedEvent codec through apache-avro's generic `Value`: slower, kept as the reference the
/// direct codec must agree with (tests compare both on every fixture and on damaged input).
pub mod reference {
    use super::*;

    thread_local! {
        // The writer keeps the resolved schema and a scratch buffer; it needs `&mut`, so one per
        // thread instead of a lock.
        static UNIFIED_WRITER: RefCell<GenericSingleObjectWriter> = RefCell::new(
            GenericSingleObjectWriter::new_with_capacity(&UNIFIED.schema, 512)
                .expect("embedded Avro schema resolves"),
        );
    }

    /// [`super::encode_unified`] through apache-avro.
    pub fn encode_unified(event: &UnifiedEvent) -> Result<Vec<u8>, CodecError> {
        let value = value_out::unified(event)?;
        let mut out = Vec::with_capacity(256);
        UNIFIED_WRITER.with_borrow_mut(|w| w.write_value_ref(&value, &mut out))?;
        Ok(out)
    }

    /// [`super::decode_unified`] through apache-avro.
    pub fn decode_unified(bytes: &[u8]) -> Result<UnifiedEvent, CodecError> {
        value_in::unified(UNIFIED.decode_value(bytes)?)
    }
}

/// `timestamp-millis` → time, refusing what chrono cannot represent.
fn from_millis(field: &str, ms: i64) -> Result<DateTime<Utc>, CodecError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| shape(format!("{field}: {ms} ms is out of range")))
}
