//! apache-avro `Value` → Rust: the reference UnifiedEvent decoder and the ActionRequest decoder.

use apache_avro::types::Value as Avro;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use super::{CodecError, from_millis, shape};
use crate::action::{ActionRequest, ActionType};
use crate::event::{
    BattleParticipant, BattlePayload, BattleStatus, ChatEmote, ChatPayload, ConnectedPayload,
    ConnectedProvider, DisconnectedPayload, EmotePayload, ErrorPayload, EventType, GiftPayload,
    JoinPayload, LikePayload, Payload, RawPayload, SocialPayload, Source, SubscribePayload,
    UnifiedEvent, User,
};

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
            Avro::TimestampMillis(ms) => DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| shape(format!("{}.{name}: {ms} ms is out of range", self.record))),
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

pub(super) fn unified(v: Avro) -> Result<UnifiedEvent, CodecError> {
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
        Some(Avro::TimestampMillis(ms)) => Some(from_millis("UnifiedEvent.ingestedAt", ms)?),
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

pub(super) fn json_object(
    text: &str,
    field: &'static str,
) -> Result<Map<String, Json>, CodecError> {
    serde_json::from_str(text).map_err(|source| CodecError::Json { field, source })
}

pub(super) fn action(v: Avro) -> Result<ActionRequest, CodecError> {
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
