//! Reads a UnifiedEvent v1 datum straight from Avro's binary encoding, field by field in schema
//! order, without building apache-avro's `Value` tree (that tree, with a `String` per field name,
//! was most of the decoding cost).
//!
//! Strict where the Avro specification is: varints longer than 10 bytes, ints outside i32, union or
//! enum indexes outside the schema, booleans other than 0/1, lengths past the end and invalid UTF-8
//! are all refused with the byte offset and the field. Array blocks with a negative count (the
//! "block size follows" form other writers may use) are accepted, as the specification requires.

use chrono::{DateTime, Utc};

use super::{CodecError, from_millis, shape, value_in::json_object};
use crate::event::{
    BattleParticipant, BattlePayload, BattleStatus, ChatEmote, ChatPayload, ConnectedPayload,
    ConnectedProvider, DisconnectedPayload, EmotePayload, ErrorPayload, EventType, GiftPayload,
    JoinPayload, LikePayload, Payload, RawPayload, SocialPayload, Source, SubscribePayload,
    UnifiedEvent, User,
};

/// A cursor over one datum; `base` is the datum's offset in the message, for error positions.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

type Result<T> = std::result::Result<T, CodecError>;

impl<'a> Reader<'a> {
    fn malformed(&self, field: &'static str, reason: &'static str) -> CodecError {
        CodecError::Malformed { field, at: self.base + self.pos, reason }
    }

    /// A zig-zag varint `long`.
    fn long(&mut self, field: &'static str) -> Result<i64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.malformed(field, "the datum ends inside a number"));
            };
            self.pos += 1;
            // Bits past 64 in a tenth byte are dropped, as the Java and Rust Avro readers do.
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(self.malformed(field, "a varint is longer than 10 bytes"))
    }

    fn int(&mut self, field: &'static str) -> Result<i32> {
        let n = self.long(field)?;
        i32::try_from(n).map_err(|_| self.malformed(field, "an int is outside 32 bits"))
    }

    /// An index into `len` choices (union branch or enum symbol).
    fn index(&mut self, field: &'static str, len: usize) -> Result<usize> {
        let n = self.long(field)?;
        usize::try_from(n)
            .ok()
            .filter(|i| *i < len)
            .ok_or_else(|| self.malformed(field, "a union branch or enum index is out of range"))
    }

    fn boolean(&mut self, field: &'static str) -> Result<bool> {
        let Some(&byte) = self.buf.get(self.pos) else {
            return Err(self.malformed(field, "the datum ends inside a boolean"));
        };
        let value = match byte {
            0 => false,
            1 => true,
            _ => return Err(self.malformed(field, "a boolean is neither 0 nor 1")),
        };
        self.pos += 1;
        Ok(value)
    }

    fn str(&mut self, field: &'static str) -> Result<&'a str> {
        let len = self.long(field)?;
        let len = usize::try_from(len)
            .map_err(|_| self.malformed(field, "a string has a negative length"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.malformed(field, "a string runs past the end of the datum"))?;
        let text = std::str::from_utf8(&self.buf[self.pos..end])
            .map_err(|_| self.malformed(field, "a string is not valid UTF-8"))?;
        self.pos = end;
        Ok(text)
    }

    fn string(&mut self, field: &'static str) -> Result<String> {
        self.str(field).map(str::to_owned)
    }

    fn millis(&mut self, field: &'static str) -> Result<DateTime<Utc>> {
        let ms = self.long(field)?;
        from_millis(field, ms)
    }

    /// A `["null", T]` union.
    fn opt<T>(
        &mut self,
        field: &'static str,
        read: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.index(field, 2)? {
            0 => Ok(None),
            _ => read(self).map(Some),
        }
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>> {
        self.opt(field, |r| r.string(field))
    }

    fn opt_long(&mut self, field: &'static str) -> Result<Option<i64>> {
        self.opt(field, |r| r.long(field))
    }

    fn opt_bool(&mut self, field: &'static str) -> Result<Option<bool>> {
        self.opt(field, |r| r.boolean(field))
    }

    /// An array in blocks: a count, that many items, until a zero count. A negative count is
    /// followed by the block's byte size, which we do not need.
    fn array<T>(
        &mut self,
        field: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut items = Vec::new();
        loop {
            let count = self.long(field)?;
            if count == 0 {
                return Ok(items);
            }
            if count < 0 {
                self.long(field)?;
            }
            let count = usize::try_from(count.unsigned_abs())
                .map_err(|_| self.malformed(field, "an array block count is too large"))?;
            // Every item takes at least one byte: a count beyond the remaining bytes is a lie, and
            // must not size an allocation.
            if count > self.buf.len() - self.pos {
                return Err(self.malformed(field, "an array block count exceeds the datum"));
            }
            items.reserve(count);
            for _ in 0..count {
                items.push(item(self)?);
            }
        }
    }
}

/// Reads one UnifiedEvent datum; `base` is its offset in the message. Coherence (eventType vs
/// triggerId, eventId shape, ...) is the caller's check, as for every other source of events.
pub(super) fn unified(datum: &[u8], base: usize) -> Result<UnifiedEvent> {
    let mut r = Reader { buf: datum, pos: 0, base };
    let schema_version = r.string("schemaVersion")?;
    let event_id = r.string("eventId")?;
    let event_type = EventType::ALL[r.index("eventType", EventType::ALL.len())?];
    let trigger_id = r.int("triggerId")?;
    let stream_id = r.string("streamId")?;
    let session_id = r.string("sessionId")?;
    let timestamp = r.millis("timestamp")?;
    let ingested_at = r.opt("ingestedAt", |r| r.millis("ingestedAt"))?;
    let source = [Source::Live, Source::Replay][r.index("source", 2)?];
    let seq_no = r.opt_long("seqNo")?;
    let user = User {
        user_id: r.string("user.userId")?,
        unique_id: r.string("user.uniqueId")?,
        display_name: r.opt_string("user.displayName")?,
        avatar_url: r.opt_string("user.avatarUrl")?,
        follow_role: r.opt_long("user.followRole")?,
        is_moderator: r.opt_bool("user.isModerator")?,
        is_subscriber: r.opt_bool("user.isSubscriber")?,
        team_member_level: r.opt_long("user.teamMemberLevel")?,
    };
    let payload = match r.index("payload", EventType::ALL.len() + 1)? {
        0 => None,
        branch => Some(payload(&mut r, event_type, branch)?),
    };
    if r.pos != datum.len() {
        return Err(CodecError::TrailingBytes(datum.len() - r.pos));
    }
    Ok(UnifiedEvent {
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
    })
}

/// Branch `n` of the payload union is the record of the event type with trigger id `n`.
fn payload(r: &mut Reader<'_>, event_type: EventType, branch: usize) -> Result<Payload> {
    let found = EventType::ALL[branch - 1];
    if found != event_type {
        return Err(shape(format!("payload branch {found} on a {event_type} event")));
    }
    Ok(match event_type {
        EventType::Chat => Payload::Chat(ChatPayload {
            message: r.string("payload.message")?,
            emotes: r.opt("payload.emotes", |r| r.array("payload.emotes", chat_emote))?,
            language: r.opt_string("payload.language")?,
        }),
        EventType::Gift => Payload::Gift(GiftPayload {
            gift_id: r.long("payload.giftId")?,
            gift_name: r.string("payload.giftName")?,
            gift_count: r.long("payload.giftCount")?,
            coins: r.long("payload.coins")?,
            diamond_count: r.opt_long("payload.diamondCount")?,
            streak_active: r.opt_bool("payload.streakActive")?,
            streak_end: r.opt_bool("payload.streakEnd")?,
            gift_image_url: r.opt_string("payload.giftImageUrl")?,
            is_gift_streak: r.opt_bool("payload.isGiftStreak")?,
        }),
        EventType::Like => Payload::Like(LikePayload {
            like_count: r.long("payload.likeCount")?,
            total_like_count: r.long("payload.totalLikeCount")?,
        }),
        EventType::Follow => {
            Payload::Follow(SocialPayload { display_type: r.string("payload.displayType")? })
        }
        EventType::Share => {
            Payload::Share(SocialPayload { display_type: r.string("payload.displayType")? })
        }
        EventType::Join => Payload::Join(JoinPayload {
            viewer_count: r.opt_long("payload.viewerCount")?,
            action_id: r.opt_long("payload.actionId")?,
        }),
        EventType::Subscribe => {
            Payload::Subscribe(SubscribePayload { sub_month: r.opt_long("payload.subMonth")? })
        }
        EventType::Emote => Payload::Emote(EmotePayload {
            emote_id: r.string("payload.emoteId")?,
            emote_image_url: r.opt_string("payload.emoteImageUrl")?,
            emote_type: r.opt_string("payload.emoteType")?,
        }),
        EventType::Battle => Payload::Battle(BattlePayload {
            battle_id: r.opt_string("payload.battleId")?,
            battle_status: r.opt("payload.battleStatus", |r| {
                let statuses = [BattleStatus::Started, BattleStatus::Updated, BattleStatus::Ended];
                Ok(statuses[r.index("payload.battleStatus", statuses.len())?])
            })?,
            participants: r
                .opt("payload.participants", |r| r.array("payload.participants", participant))?,
        }),
        EventType::Connected => Payload::Connected(ConnectedPayload {
            room_id: r.opt_string("payload.roomId")?,
            is_connected: r.opt_bool("payload.isConnected")?,
            provider: r.opt("payload.provider", |r| {
                let providers = [ConnectedProvider::Direct, ConnectedProvider::Euler];
                Ok(providers[r.index("payload.provider", providers.len())?])
            })?,
        }),
        EventType::Disconnected => Payload::Disconnected(DisconnectedPayload {
            code: r.opt_long("payload.code")?,
            reason: r.opt_string("payload.reason")?,
            will_reconnect: r.opt_bool("payload.willReconnect")?,
        }),
        EventType::Error => Payload::Error(ErrorPayload {
            message: r.string("payload.message")?,
            code: r.opt_string("payload.code")?,
            stack: r.opt_string("payload.stack")?,
        }),
        EventType::Raw => Payload::Raw(RawPayload {
            raw_type: r.string("payload.rawType")?,
            data: r
                .opt("payload.data", |r| r.str("payload.data"))?
                .map(|text| json_object(text, "payload.data"))
                .transpose()?,
        }),
    })
}

fn chat_emote(r: &mut Reader<'_>) -> Result<ChatEmote> {
    Ok(ChatEmote {
        emote_id: r.opt_string("payload.emotes.emoteId")?,
        emote_image_url: r.opt_string("payload.emotes.emoteImageUrl")?,
        placeholder_index: r.opt_long("payload.emotes.placeholderIndex")?,
    })
}

fn participant(r: &mut Reader<'_>) -> Result<BattleParticipant> {
    Ok(BattleParticipant {
        user_id: r.opt_string("payload.participants.userId")?,
        unique_id: r.opt_string("payload.participants.uniqueId")?,
        display_name: r.opt_string("payload.participants.displayName")?,
        score: r.opt_long("payload.participants.score")?,
    })
}
