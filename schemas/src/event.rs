//! UnifiedEvent v1: the one normalized event every downstream stage and team reads.
//!
//! Field names, enums and trigger ids follow the seed contract in `shared/reference/`. We are stricter
//! in one way that matters: `eventType`, `triggerId` and the payload shape must agree. That is why
//! [`UnifiedEvent`] deserializes through a wire struct: the payload is parsed as the type its
//! `eventType` names, never guessed from its fields (the seed's `oneOf` is ambiguous for `{}`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `schemaVersion` value of every UnifiedEvent v1.
pub const SCHEMA_VERSION: &str = "1";

/// Canonical event types with their stable trigger ids (seed `_triggerIdMapping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Chat,
    Gift,
    Like,
    Follow,
    Share,
    Join,
    Subscribe,
    Emote,
    Battle,
    Connected,
    Disconnected,
    Error,
    Raw,
}

impl EventType {
    /// Every event type, in trigger-id order.
    pub const ALL: [EventType; 13] = [
        EventType::Chat,
        EventType::Gift,
        EventType::Like,
        EventType::Follow,
        EventType::Share,
        EventType::Join,
        EventType::Subscribe,
        EventType::Emote,
        EventType::Battle,
        EventType::Connected,
        EventType::Disconnected,
        EventType::Error,
        EventType::Raw,
    ];

    /// The stable numeric id the rule engine dispatches on.
    pub fn trigger_id(self) -> i32 {
        self as i32 + 1
    }

    /// The inverse of [`EventType::trigger_id`].
    pub fn from_trigger_id(id: i32) -> Option<Self> {
        usize::try_from(id - 1).ok().and_then(|i| Self::ALL.get(i).copied())
    }

    /// The wire name, e.g. `"CHAT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Chat => "CHAT",
            EventType::Gift => "GIFT",
            EventType::Like => "LIKE",
            EventType::Follow => "FOLLOW",
            EventType::Share => "SHARE",
            EventType::Join => "JOIN",
            EventType::Subscribe => "SUBSCRIBE",
            EventType::Emote => "EMOTE",
            EventType::Battle => "BATTLE",
            EventType::Connected => "CONNECTED",
            EventType::Disconnected => "DISCONNECTED",
            EventType::Error => "ERROR",
            EventType::Raw => "RAW",
        }
    }

    /// Parses a wire name such as `"GIFT"`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an event came from a live connection or from replaying a stored session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Live,
    Replay,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Live => "live",
            Source::Replay => "replay",
        }
    }
}

/// The TikTok user who caused the event; `{userId "0", uniqueId "system"}` for lifecycle events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub user_id: String,
    pub unique_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// 0 = not following, 1 = following, 2 = friend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_role: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_moderator: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_subscriber: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_member_level: Option<i64>,
}

impl User {
    /// The user attached to lifecycle events that have no TikTok user.
    pub fn system() -> Self {
        User { user_id: "0".into(), unique_id: "system".into(), ..User::default() }
    }
}

/// A normalized TikTok LIVE event (UnifiedEvent v1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "wire::UnifiedEventWire")]
pub struct UnifiedEvent {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// Lowercase hex SHA-256 of `streamId:sessionId:seqNo:rawType`.
    pub event_id: String,
    pub event_type: EventType,
    /// Always `event_type.trigger_id()`.
    pub trigger_id: i32,
    pub stream_id: String,
    pub session_id: String,
    #[serde(with = "crate::time")]
    pub timestamp: DateTime<Utc>,
    #[serde(default, with = "crate::time::option", skip_serializing_if = "Option::is_none")]
    pub ingested_at: Option<DateTime<Utc>>,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_no: Option<i64>,
    pub user: User,
    /// Left out rather than `{}`: an empty object is ambiguous under the seed's `oneOf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
}

impl UnifiedEvent {
    /// Checks what the type system cannot: `schemaVersion`, `triggerId` and the payload agree with
    /// `eventType`, the payload is not empty, FOLLOW/SHARE carry their canonical `displayType`,
    /// `eventId` is a lowercase hex SHA-256 and `seqNo` is not negative. Deserialization and the
    /// Avro codec both run it, so an incoherent event is never read or written.
    pub fn check_coherent(&self) -> Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!("unsupported schemaVersion {:?}", self.schema_version));
        }
        if self.trigger_id != self.event_type.trigger_id() {
            return Err(format!(
                "triggerId {} does not match eventType {} (expected {})",
                self.trigger_id,
                self.event_type,
                self.event_type.trigger_id()
            ));
        }
        if !is_sha256_hex(&self.event_id) {
            return Err(format!(
                "eventId {:?} is not a lowercase hex SHA-256 (64 characters)",
                self.event_id
            ));
        }
        if let Some(seq) = self.seq_no.filter(|n| *n < 0) {
            return Err(format!("seqNo {seq} is negative"));
        }
        if let Some(p) = &self.payload {
            if p.event_type() != self.event_type {
                return Err(format!("a {} payload on a {} event", p.event_type(), self.event_type));
            }
            if p.is_empty() {
                return Err(format!(
                    "empty {} payload: leave payload out instead of sending {{}}",
                    self.event_type
                ));
            }
            let canonical = match p {
                Payload::Follow(s) => Some((s, SocialPayload::FOLLOW)),
                Payload::Share(s) => Some((s, SocialPayload::SHARE)),
                _ => None,
            };
            if let Some((s, want)) = canonical.filter(|(s, want)| s.display_type != *want) {
                return Err(format!(
                    "{} displayType must be {want:?}, found {:?}",
                    self.event_type, s.display_type
                ));
            }
        }
        Ok(())
    }

    /// True for a GIFT event that counts toward money and gift totals: the final frame of a streak,
    /// or a gift that is not a streak at all. False for every other event.
    pub fn is_final_gift_frame(&self) -> bool {
        matches!(&self.payload, Some(Payload::Gift(g)) if g.is_final_frame())
    }
}

/// The per-type payload. Serialized as the bare payload object (no tag): `eventType` is the tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Chat(ChatPayload),
    Gift(GiftPayload),
    Like(LikePayload),
    Follow(SocialPayload),
    Share(SocialPayload),
    Join(JoinPayload),
    Subscribe(SubscribePayload),
    Emote(EmotePayload),
    Battle(BattlePayload),
    Connected(ConnectedPayload),
    Disconnected(DisconnectedPayload),
    Error(ErrorPayload),
    Raw(RawPayload),
}

impl Payload {
    /// The event type this payload belongs to.
    pub fn event_type(&self) -> EventType {
        match self {
            Payload::Chat(_) => EventType::Chat,
            Payload::Gift(_) => EventType::Gift,
            Payload::Like(_) => EventType::Like,
            Payload::Follow(_) => EventType::Follow,
            Payload::Share(_) => EventType::Share,
            Payload::Join(_) => EventType::Join,
            Payload::Subscribe(_) => EventType::Subscribe,
            Payload::Emote(_) => EventType::Emote,
            Payload::Battle(_) => EventType::Battle,
            Payload::Connected(_) => EventType::Connected,
            Payload::Disconnected(_) => EventType::Disconnected,
            Payload::Error(_) => EventType::Error,
            Payload::Raw(_) => EventType::Raw,
        }
    }

    /// True when the payload would serialize as `{}` (every field of an all-optional payload is
    /// absent). Such a payload must be left out: under the seed's `oneOf` it is ambiguous.
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Join(j) => j.viewer_count.is_none() && j.action_id.is_none(),
            Payload::Subscribe(s) => s.sub_month.is_none(),
            Payload::Battle(b) => {
                b.battle_id.is_none() && b.battle_status.is_none() && b.participants.is_none()
            }
            Payload::Connected(c) => {
                c.room_id.is_none() && c.is_connected.is_none() && c.provider.is_none()
            }
            Payload::Disconnected(d) => {
                d.code.is_none() && d.reason.is_none() && d.will_reconnect.is_none()
            }
            Payload::Chat(_)
            | Payload::Gift(_)
            | Payload::Like(_)
            | Payload::Follow(_)
            | Payload::Share(_)
            | Payload::Emote(_)
            | Payload::Error(_)
            | Payload::Raw(_) => false,
        }
    }

    /// Parses a payload object as the shape `event_type` requires.
    pub fn from_json(event_type: EventType, value: Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value as v;
        Ok(match event_type {
            EventType::Chat => Payload::Chat(v(value)?),
            EventType::Gift => Payload::Gift(v(value)?),
            EventType::Like => Payload::Like(v(value)?),
            EventType::Follow => Payload::Follow(v(value)?),
            EventType::Share => Payload::Share(v(value)?),
            EventType::Join => Payload::Join(v(value)?),
            EventType::Subscribe => Payload::Subscribe(v(value)?),
            EventType::Emote => Payload::Emote(v(value)?),
            EventType::Battle => Payload::Battle(v(value)?),
            EventType::Connected => Payload::Connected(v(value)?),
            EventType::Disconnected => Payload::Disconnected(v(value)?),
            EventType::Error => Payload::Error(v(value)?),
            EventType::Raw => Payload::Raw(v(value)?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatPayload {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotes: Option<Vec<ChatEmote>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatEmote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emote_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emote_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder_index: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GiftPayload {
    pub gift_id: i64,
    pub gift_name: String,
    /// Repeat count of this frame (≥ 1).
    pub gift_count: i64,
    /// Unit diamond price × repeat count.
    pub coins: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diamond_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streak_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streak_end: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_gift_streak: Option<bool>,
}

impl GiftPayload {
    /// Money and gift counts use final frames only: a streak's end frame, or a non-streak gift.
    pub fn is_final_frame(&self) -> bool {
        self.streak_end == Some(true) || self.is_gift_streak != Some(true)
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LikePayload {
    pub like_count: i64,
    pub total_like_count: i64,
}

/// FOLLOW and SHARE payloads: `displayType` is the contract's canonical value
/// ([`SocialPayload::FOLLOW`] or [`SocialPayload::SHARE`]), not TikTok's raw display key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SocialPayload {
    pub display_type: String,
}

impl SocialPayload {
    pub const FOLLOW: &'static str = "pm_mt_msg_viewer_follow";
    pub const SHARE: &'static str = "pm_mt_msg_viewer_share";
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_month: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmotePayload {
    pub emote_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emote_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emote_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BattleStatus {
    Started,
    Updated,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BattlePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battle_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battle_status: Option<BattleStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<BattleParticipant>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BattleParticipant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
}

/// Which provider established a live connection. Mock and replay sessions leave it out (seed enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectedProvider {
    Direct,
    Euler,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectedPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_connected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ConnectedProvider>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisconnectedPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub will_reconnect: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorPayload {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// Passthrough for TikTok messages without a canonical type: nothing is dropped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawPayload {
    pub raw_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
}

fn is_sha256_hex(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

mod wire {
    //! The JSON shape as received; converted into [`UnifiedEvent`] once the payload is parsed as
    //! the type its `eventType` names.
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub(super) struct UnifiedEventWire {
        schema_version: String,
        event_id: String,
        event_type: EventType,
        trigger_id: i32,
        stream_id: String,
        session_id: String,
        #[serde(with = "crate::time")]
        timestamp: DateTime<Utc>,
        #[serde(default, with = "crate::time::option")]
        ingested_at: Option<DateTime<Utc>>,
        source: Source,
        #[serde(default)]
        seq_no: Option<i64>,
        user: User,
        #[serde(default)]
        payload: Option<Value>,
    }

    impl TryFrom<UnifiedEventWire> for UnifiedEvent {
        type Error = String;

        fn try_from(w: UnifiedEventWire) -> Result<Self, String> {
            // Checked before the payload is parsed so a wrong triggerId is reported as such, not
            // as a payload error.
            if w.trigger_id != w.event_type.trigger_id() {
                return Err(format!(
                    "triggerId {} does not match eventType {} (expected {})",
                    w.trigger_id,
                    w.event_type,
                    w.event_type.trigger_id()
                ));
            }
            let payload = w
                .payload
                .map(|p| Payload::from_json(w.event_type, p))
                .transpose()
                .map_err(|e| format!("payload is not a valid {} payload: {e}", w.event_type))?;
            let event = UnifiedEvent {
                schema_version: w.schema_version,
                event_id: w.event_id,
                event_type: w.event_type,
                trigger_id: w.trigger_id,
                stream_id: w.stream_id,
                session_id: w.session_id,
                timestamp: w.timestamp,
                ingested_at: w.ingested_at,
                source: w.source,
                seq_no: w.seq_no,
                user: w.user,
                payload,
            };
            event.check_coherent()?;
            Ok(event)
        }
    }
}
