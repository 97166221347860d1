//! Avro codecs for the `unified` and `actions` topics, in Avro single-object encoding.
//!
//! A message is `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the schema's
//! canonical form, then the binary datum. The fingerprint lets any consumer (ours or a downstream
//! team's) tell which schema wrote a record without a registry, and lets us refuse records written
//! with another schema instead of mis-decoding them.
//!
//! Values are built by hand as [`apache_avro::types::Value`] rather than through serde: the payload
//! union holds one record per event type, and choosing the branch explicitly from `eventType` is both
//! unambiguous and cheaper than serde's union guessing. Schemas are parsed once per process.
//!
//! Timestamps are `timestamp-millis`: sub-millisecond precision is dropped, exactly as the JSON form
//! (see [`crate::time`]) drops it, so JSON → Avro → JSON is lossless.

use std::cell::RefCell;
use std::sync::LazyLock;

use apache_avro::types::Value as Avro;
use apache_avro::{GenericSingleObjectReader, GenericSingleObjectWriter, Schema};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use crate::action::{ActionRequest, ActionType};
use crate::event::{
    BattleParticipant, BattlePayload, BattleStatus, ChatEmote, ChatPayload, ConnectedPayload,
    ConnectedProvider, DisconnectedPayload, EmotePayload, ErrorPayload, EventType, GiftPayload,
    JoinPayload, LikePayload, Payload, RawPayload, SocialPayload, Source, SubscribePayload,
    UnifiedEvent, User,
};

/// The UnifiedEvent v1 Avro schema text (`unified-event.v1.avsc`).
pub const UNIFIED_AVSC: &str = include_str!("../unified-event.v1.avsc");
/// The ActionRequest v1 Avro schema text (`action-request.v1.avsc`).
pub const ACTION_AVSC: &str = include_str!("../action-request.v1.avsc");

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

    /// Checks the header ourselves first so a wrong marker and a foreign schema get distinct,
    /// readable errors.
    fn decode(&self, bytes: &[u8]) -> Result<Avro, CodecError> {
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
    static UNIFIED_WRITER: RefCell<GenericSingleObjectWriter> = RefCell::new(
        GenericSingleObjectWriter::new_with_capacity(&UNIFIED.schema, 512)
            .expect("embedded Avro schema resolves"),
    );
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
    let value = unified_to_avro(event)?;
    let mut out = Vec::with_capacity(256);
    UNIFIED_WRITER.with_borrow_mut(|w| w.write_value_ref(&value, &mut out))?;
    Ok(out)
}

/// Decodes an Avro single-object message written with the UnifiedEvent v1 schema.
pub fn decode_unified(bytes: &[u8]) -> Result<UnifiedEvent, CodecError> {
    unified_from_avro(UNIFIED.decode(bytes)?)
}

/// Encodes an ActionRequest as an Avro single-object message.
pub fn encode_action(action: &ActionRequest) -> Result<Vec<u8>, CodecError> {
    let value = action_to_avro(action)?;
    let mut out = Vec::with_capacity(256);
    ACTION_WRITER.with_borrow_mut(|w| w.write_value_ref(&value, &mut out))?;
    Ok(out)
}

/// Decodes an Avro single-object message written with the ActionRequest v1 schema.
pub fn decode_action(bytes: &[u8]) -> Result<ActionRequest, CodecError> {
    action_from_avro(ACTION.decode(bytes)?)
}

// ---------------------------------------------------------------------------------------------
// Rust → Avro

fn string(s: &str) -> Avro {
    Avro::String(s.to_owned())
}

fn null() -> Avro {
    Avro::Union(0, Box::new(Avro::Null))
}

/// `["null", T]` with `T` built by `f`.
fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Avro) -> Avro {
    match v {
        None => null(),
        Some(v) => Avro::Union(1, Box::new(f(v))),
    }
}

fn opt_str(v: &Option<String>) -> Avro {
    opt(v.as_deref(), string)
}

fn opt_long(v: Option<i64>) -> Avro {
    opt(v, Avro::Long)
}

fn opt_bool(v: Option<bool>) -> Avro {
    opt(v, Avro::Boolean)
}

fn record<const N: usize>(fields: [(&'static str, Avro); N]) -> Avro {
    Avro::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn millis(ts: &DateTime<Utc>) -> Avro {
    Avro::TimestampMillis(ts.timestamp_millis())
}

fn unified_to_avro(e: &UnifiedEvent) -> Result<Avro, CodecError> {
    e.check_coherent().map_err(CodecError::Shape)?;
    let payload = match &e.payload {
        None => null(),
        Some(p) => payload_to_avro(p)?,
    };
    let ty = e.event_type;
    Ok(record([
        ("schemaVersion", string(&e.schema_version)),
        ("eventId", string(&e.event_id)),
        ("eventType", Avro::Enum(ty as u32, ty.as_str().to_owned())),
        ("triggerId", Avro::Int(e.trigger_id)),
        ("streamId", string(&e.stream_id)),
        ("sessionId", string(&e.session_id)),
        ("timestamp", millis(&e.timestamp)),
        ("ingestedAt", opt(e.ingested_at.as_ref(), millis)),
        ("source", Avro::Enum(e.source as u32, e.source.as_str().to_owned())),
        ("seqNo", opt_long(e.seq_no)),
        ("user", user_to_avro(&e.user)),
        ("payload", payload),
    ]))
}

fn user_to_avro(u: &User) -> Avro {
    record([
        ("userId", string(&u.user_id)),
        ("uniqueId", string(&u.unique_id)),
        ("displayName", opt_str(&u.display_name)),
        ("avatarUrl", opt_str(&u.avatar_url)),
        ("followRole", opt_long(u.follow_role)),
        ("isModerator", opt_bool(u.is_moderator)),
        ("isSubscriber", opt_bool(u.is_subscriber)),
        ("teamMemberLevel", opt_long(u.team_member_level)),
    ])
}

/// The union branch: `null` is 0, then one record per event type in trigger-id order.
fn payload_to_avro(p: &Payload) -> Result<Avro, CodecError> {
    let rec = match p {
        Payload::Chat(c) => record([
            ("message", string(&c.message)),
            (
                "emotes",
                opt(c.emotes.as_ref(), |list| {
                    Avro::Array(
                        list.iter()
                            .map(|m| {
                                record([
                                    ("emoteId", opt_str(&m.emote_id)),
                                    ("emoteImageUrl", opt_str(&m.emote_image_url)),
                                    ("placeholderIndex", opt_long(m.placeholder_index)),
                                ])
                            })
                            .collect(),
                    )
                }),
            ),
            ("language", opt_str(&c.language)),
        ]),
        Payload::Gift(g) => record([
            ("giftId", Avro::Long(g.gift_id)),
            ("giftName", string(&g.gift_name)),
            ("giftCount", Avro::Long(g.gift_count)),
            ("coins", Avro::Long(g.coins)),
            ("diamondCount", opt_long(g.diamond_count)),
            ("streakActive", opt_bool(g.streak_active)),
            ("streakEnd", opt_bool(g.streak_end)),
            ("giftImageUrl", opt_str(&g.gift_image_url)),
            ("isGiftStreak", opt_bool(g.is_gift_streak)),
        ]),
        Payload::Like(l) => record([
            ("likeCount", Avro::Long(l.like_count)),
            ("totalLikeCount", Avro::Long(l.total_like_count)),
        ]),
        Payload::Follow(s) | Payload::Share(s) => {
            record([("displayType", string(&s.display_type))])
        }
        Payload::Join(j) => {
            record([("viewerCount", opt_long(j.viewer_count)), ("actionId", opt_long(j.action_id))])
        }
        Payload::Subscribe(s) => record([("subMonth", opt_long(s.sub_month))]),
        Payload::Emote(m) => record([
            ("emoteId", string(&m.emote_id)),
            ("emoteImageUrl", opt_str(&m.emote_image_url)),
            ("emoteType", opt_str(&m.emote_type)),
        ]),
        Payload::Battle(b) => record([
            ("battleId", opt_str(&b.battle_id)),
            (
                "battleStatus",
                opt(b.battle_status, |s| {
                    let (i, name) = match s {
                        BattleStatus::Started => (0, "STARTED"),
                        BattleStatus::Updated => (1, "UPDATED"),
                        BattleStatus::Ended => (2, "ENDED"),
                    };
                    Avro::Enum(i, name.to_owned())
                }),
            ),
            (
                "participants",
                opt(b.participants.as_ref(), |list| {
                    Avro::Array(
                        list.iter()
                            .map(|p| {
                                record([
                                    ("userId", opt_str(&p.user_id)),
                                    ("uniqueId", opt_str(&p.unique_id)),
                                    ("displayName", opt_str(&p.display_name)),
                                    ("score", opt_long(p.score)),
                                ])
                            })
                            .collect(),
                    )
                }),
            ),
        ]),
        Payload::Connected(c) => record([
            ("roomId", opt_str(&c.room_id)),
            ("isConnected", opt_bool(c.is_connected)),
            (
                "provider",
                opt(c.provider, |p| match p {
                    ConnectedProvider::Direct => Avro::Enum(0, "direct".to_owned()),
                    ConnectedProvider::Euler => Avro::Enum(1, "euler".to_owned()),
                }),
            ),
        ]),
        Payload::Disconnected(d) => record([
            ("code", opt_long(d.code)),
            ("reason", opt_str(&d.reason)),
            ("willReconnect", opt_bool(d.will_reconnect)),
        ]),
        Payload::Error(e) => record([
            ("message", string(&e.message)),
            ("code", opt_str(&e.code)),
            ("stack", opt_str(&e.stack)),
        ]),
        Payload::Raw(r) => {
            let data = match &r.data {
                None => null(),
                Some(map) => Avro::Union(
                    1,
                    Box::new(Avro::String(
                        serde_json::to_string(map)
                            .map_err(|source| CodecError::Json { field: "payload.data", source })?,
                    )),
                ),
            };
            record([("rawType", string(&r.raw_type)), ("data", data)])
        }
    };
    Ok(Avro::Union(p.event_type() as u32 + 1, Box::new(rec)))
}

fn action_to_avro(a: &ActionRequest) -> Result<Avro, CodecError> {
    let params = serde_json::to_string(&a.params)
        .map_err(|source| CodecError::Json { field: "params", source })?;
    Ok(record([
        ("actionId", string(&a.action_id)),
        ("ruleId", string(&a.rule_id)),
        ("eventId", string(&a.event_id)),
        ("streamId", string(&a.stream_id)),
        ("sessionId", string(&a.session_id)),
        ("type", Avro::Enum(a.action_type as u32, a.action_type.as_str().to_owned())),
        ("renderedTemplate", string(&a.rendered_template)),
        ("params", Avro::String(params)),
        ("attempt", Avro::Int(a.attempt)),
        ("createdAt", millis(&a.created_at)),
    ]))
}

// ---------------------------------------------------------------------------------------------
// Avro → Rust

/// Walks a decoded record's fields in schema order, checking each name, so a schema edit that
/// forgets the codec fails loudly instead of shifting values into the wrong fields.
struct Fields {
    record: &'static str,
    it: std::vec::IntoIter<(String, Avro)>,
}

impl Fields {
    fn of(record: &'static str, v: Avro) -> Result<Self, CodecError> {
        match v {
            Avro::Record(fields) => Ok(Fields { record, it: fields.into_iter() }),
            other => Err(shape(format!("{record}: expected a record, found {other:?}"))),
        }
    }

    fn next(&mut self, name: &'static str) -> Result<Avro, CodecError> {
        match self.it.next() {
            Some((n, v)) if n == name => Ok(v),
            Some((n, _)) => {
                Err(shape(format!("{}: expected field {name}, found {n}", self.record)))
            }
            None => Err(shape(format!("{}: missing field {name}", self.record))),
        }
    }

    fn mismatch(&self, name: &str, want: &str, got: &Avro) -> CodecError {
        shape(format!("{}.{name}: expected {want}, found {got:?}", self.record))
    }

    fn string(&mut self, name: &'static str) -> Result<String, CodecError> {
        match self.next(name)? {
            Avro::String(s) => Ok(s),
            other => Err(self.mismatch(name, "string", &other)),
        }
    }

    fn long(&mut self, name: &'static str) -> Result<i64, CodecError> {
        match self.next(name)? {
            Avro::Long(n) => Ok(n),
            other => Err(self.mismatch(name, "long", &other)),
        }
    }

    fn int(&mut self, name: &'static str) -> Result<i32, CodecError> {
        match self.next(name)? {
            Avro::Int(n) => Ok(n),
            other => Err(self.mismatch(name, "int", &other)),
        }
    }

    fn millis(&mut self, name: &'static str) -> Result<DateTime<Utc>, CodecError> {
        match self.next(name)? {
            Avro::TimestampMillis(ms) => from_millis(self.record, name, ms),
            other => Err(self.mismatch(name, "timestamp-millis", &other)),
        }
    }

    fn enum_index(&mut self, name: &'static str) -> Result<u32, CodecError> {
        match self.next(name)? {
            Avro::Enum(i, _) => Ok(i),
            other => Err(self.mismatch(name, "enum", &other)),
        }
    }

    /// A `["null", T]` union: `None` for the null branch, else the inner value.
    fn opt(&mut self, name: &'static str) -> Result<Option<Avro>, CodecError> {
        match self.next(name)? {
            Avro::Union(_, inner) => match *inner {
                Avro::Null => Ok(None),
                v => Ok(Some(v)),
            },
            Avro::Null => Ok(None),
            other => Err(self.mismatch(name, "union", &other)),
        }
    }

    fn opt_string(&mut self, name: &'static str) -> Result<Option<String>, CodecError> {
        match self.opt(name)? {
            None => Ok(None),
            Some(Avro::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.mismatch(name, "string", &other)),
        }
    }

    fn opt_long(&mut self, name: &'static str) -> Result<Option<i64>, CodecError> {
        match self.opt(name)? {
            None => Ok(None),
            Some(Avro::Long(n)) => Ok(Some(n)),
            Some(other) => Err(self.mismatch(name, "long", &other)),
        }
    }

    fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, CodecError> {
        match self.opt(name)? {
            None => Ok(None),
            Some(Avro::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(self.mismatch(name, "boolean", &other)),
        }
    }

    fn opt_enum_index(&mut self, name: &'static str) -> Result<Option<u32>, CodecError> {
        match self.opt(name)? {
            None => Ok(None),
            Some(Avro::Enum(i, _)) => Ok(Some(i)),
            Some(other) => Err(self.mismatch(name, "enum", &other)),
        }
    }

    fn opt_array(&mut self, name: &'static str) -> Result<Option<Vec<Avro>>, CodecError> {
        match self.opt(name)? {
            None => Ok(None),
            Some(Avro::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.mismatch(name, "array", &other)),
        }
    }
}

fn from_millis(record: &str, name: &str, ms: i64) -> Result<DateTime<Utc>, CodecError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| shape(format!("{record}.{name}: {ms} ms is out of range")))
}

fn unified_from_avro(v: Avro) -> Result<UnifiedEvent, CodecError> {
    let mut f = Fields::of("UnifiedEvent", v)?;
    let schema_version = f.string("schemaVersion")?;
    let event_id = f.string("eventId")?;
    let type_index = f.enum_index("eventType")?;
    let event_type = usize::try_from(type_index)
        .ok()
        .and_then(|i| EventType::ALL.get(i).copied())
        .ok_or_else(|| shape(format!("eventType index {type_index} out of range")))?;
    let trigger_id = f.int("triggerId")?;
    let stream_id = f.string("streamId")?;
    let session_id = f.string("sessionId")?;
    let timestamp = f.millis("timestamp")?;
    let ingested_at = match f.opt("ingestedAt")? {
        None => None,
        Some(Avro::TimestampMillis(ms)) => Some(from_millis("UnifiedEvent", "ingestedAt", ms)?),
        Some(other) => return Err(f.mismatch("ingestedAt", "timestamp-millis", &other)),
    };
    let source = match f.enum_index("source")? {
        0 => Source::Live,
        1 => Source::Replay,
        i => return Err(shape(format!("source index {i} out of range"))),
    };
    let seq_no = f.opt_long("seqNo")?;
    let user = user_from_avro(f.next("user")?)?;
    let payload = match f.next("payload")? {
        Avro::Union(0, _) | Avro::Null => None,
        Avro::Union(branch, inner) => Some(payload_from_avro(event_type, branch, *inner)?),
        other => return Err(f.mismatch("payload", "union", &other)),
    };
    let event = UnifiedEvent {
        schema_version,
        event_id,
        event_type,
        trigger_id,
        stream_id,
        session_id,
        timestamp,
        ingested_at,
        source,
        seq_no,
        user,
        payload,
    };
    // Another writer with our schema could still have written an incoherent event.
    event.check_coherent().map_err(CodecError::Shape)?;
    Ok(event)
}

fn user_from_avro(v: Avro) -> Result<User, CodecError> {
    let mut f = Fields::of("User", v)?;
    Ok(User {
        user_id: f.string("userId")?,
        unique_id: f.string("uniqueId")?,
        display_name: f.opt_string("displayName")?,
        avatar_url: f.opt_string("avatarUrl")?,
        follow_role: f.opt_long("followRole")?,
        is_moderator: f.opt_bool("isModerator")?,
        is_subscriber: f.opt_bool("isSubscriber")?,
        team_member_level: f.opt_long("teamMemberLevel")?,
    })
}

fn payload_from_avro(event_type: EventType, branch: u32, v: Avro) -> Result<Payload, CodecError> {
    // Branch 0 is null, so branch n carries the payload of the event type with trigger id n.
    if i64::from(branch) != i64::from(event_type.trigger_id()) {
        let found = i32::try_from(branch).ok().and_then(EventType::from_trigger_id);
        return Err(shape(format!(
            "payload branch {} on a {event_type} event",
            found.map_or_else(|| branch.to_string(), |t| t.to_string())
        )));
    }
    Ok(match event_type {
        EventType::Chat => {
            let mut f = Fields::of("ChatPayload", v)?;
            let message = f.string("message")?;
            let emotes = f
                .opt_array("emotes")?
                .map(|items| items.into_iter().map(chat_emote_from_avro).collect())
                .transpose()?;
            Payload::Chat(ChatPayload { message, emotes, language: f.opt_string("language")? })
        }
        EventType::Gift => {
            let mut f = Fields::of("GiftPayload", v)?;
            Payload::Gift(GiftPayload {
                gift_id: f.long("giftId")?,
                gift_name: f.string("giftName")?,
                gift_count: f.long("giftCount")?,
                coins: f.long("coins")?,
                diamond_count: f.opt_long("diamondCount")?,
                streak_active: f.opt_bool("streakActive")?,
                streak_end: f.opt_bool("streakEnd")?,
                gift_image_url: f.opt_string("giftImageUrl")?,
                is_gift_streak: f.opt_bool("isGiftStreak")?,
            })
        }
        EventType::Like => {
            let mut f = Fields::of("LikePayload", v)?;
            Payload::Like(LikePayload {
                like_count: f.long("likeCount")?,
                total_like_count: f.long("totalLikeCount")?,
            })
        }
        EventType::Follow => {
            let mut f = Fields::of("FollowPayload", v)?;
            Payload::Follow(SocialPayload { display_type: f.string("displayType")? })
        }
        EventType::Share => {
            let mut f = Fields::of("SharePayload", v)?;
            Payload::Share(SocialPayload { display_type: f.string("displayType")? })
        }
        EventType::Join => {
            let mut f = Fields::of("JoinPayload", v)?;
            Payload::Join(JoinPayload {
                viewer_count: f.opt_long("viewerCount")?,
                action_id: f.opt_long("actionId")?,
            })
        }
        EventType::Subscribe => {
            let mut f = Fields::of("SubscribePayload", v)?;
            Payload::Subscribe(SubscribePayload { sub_month: f.opt_long("subMonth")? })
        }
        EventType::Emote => {
            let mut f = Fields::of("EmotePayload", v)?;
            Payload::Emote(EmotePayload {
                emote_id: f.string("emoteId")?,
                emote_image_url: f.opt_string("emoteImageUrl")?,
                emote_type: f.opt_string("emoteType")?,
            })
        }
        EventType::Battle => {
            let mut f = Fields::of("BattlePayload", v)?;
            let battle_id = f.opt_string("battleId")?;
            let battle_status = match f.opt_enum_index("battleStatus")? {
                None => None,
                Some(0) => Some(BattleStatus::Started),
                Some(1) => Some(BattleStatus::Updated),
                Some(2) => Some(BattleStatus::Ended),
                Some(i) => return Err(shape(format!("battleStatus index {i} out of range"))),
            };
            let participants = f
                .opt_array("participants")?
                .map(|items| items.into_iter().map(participant_from_avro).collect())
                .transpose()?;
            Payload::Battle(BattlePayload { battle_id, battle_status, participants })
        }
        EventType::Connected => {
            let mut f = Fields::of("ConnectedPayload", v)?;
            let room_id = f.opt_string("roomId")?;
            let is_connected = f.opt_bool("isConnected")?;
            let provider = match f.opt_enum_index("provider")? {
                None => None,
                Some(0) => Some(ConnectedProvider::Direct),
                Some(1) => Some(ConnectedProvider::Euler),
                Some(i) => return Err(shape(format!("provider index {i} out of range"))),
            };
            Payload::Connected(ConnectedPayload { room_id, is_connected, provider })
        }
        EventType::Disconnected => {
            let mut f = Fields::of("DisconnectedPayload", v)?;
            Payload::Disconnected(DisconnectedPayload {
                code: f.opt_long("code")?,
                reason: f.opt_string("reason")?,
                will_reconnect: f.opt_bool("willReconnect")?,
            })
        }
        EventType::Error => {
            let mut f = Fields::of("ErrorPayload", v)?;
            Payload::Error(ErrorPayload {
                message: f.string("message")?,
                code: f.opt_string("code")?,
                stack: f.opt_string("stack")?,
            })
        }
        EventType::Raw => {
            let mut f = Fields::of("RawPayload", v)?;
            let raw_type = f.string("rawType")?;
            let data =
                f.opt_string("data")?.map(|text| json_object(&text, "payload.data")).transpose()?;
            Payload::Raw(RawPayload { raw_type, data })
        }
    })
}

fn chat_emote_from_avro(v: Avro) -> Result<ChatEmote, CodecError> {
    let mut f = Fields::of("ChatEmote", v)?;
    Ok(ChatEmote {
        emote_id: f.opt_string("emoteId")?,
        emote_image_url: f.opt_string("emoteImageUrl")?,
        placeholder_index: f.opt_long("placeholderIndex")?,
    })
}

fn participant_from_avro(v: Avro) -> Result<BattleParticipant, CodecError> {
    let mut f = Fields::of("BattleParticipant", v)?;
    Ok(BattleParticipant {
        user_id: f.opt_string("userId")?,
        unique_id: f.opt_string("uniqueId")?,
        display_name: f.opt_string("displayName")?,
        score: f.opt_long("score")?,
    })
}

fn json_object(text: &str, field: &'static str) -> Result<Map<String, Json>, CodecError> {
    serde_json::from_str(text).map_err(|source| CodecError::Json { field, source })
}

fn action_from_avro(v: Avro) -> Result<ActionRequest, CodecError> {
    let mut f = Fields::of("ActionRequest", v)?;
    let action_id = f.string("actionId")?;
    let rule_id = f.string("ruleId")?;
    let event_id = f.string("eventId")?;
    let stream_id = f.string("streamId")?;
    let session_id = f.string("sessionId")?;
    let action_type = match f.enum_index("type")? {
        0 => ActionType::Announce,
        1 => ActionType::Moderate,
        2 => ActionType::Webhook,
        3 => ActionType::Overlay,
        4 => ActionType::Log,
        i => return Err(shape(format!("action type index {i} out of range"))),
    };
    let rendered_template = f.string("renderedTemplate")?;
    let params = json_object(&f.string("params")?, "params")?;
    Ok(ActionRequest {
        action_id,
        rule_id,
        event_id,
        stream_id,
        session_id,
        action_type,
        rendered_template,
        params,
        attempt: f.int("attempt")?,
        created_at: f.millis("createdAt")?,
    })
}
