//! Denormalized columns derived from a UnifiedEvent, shared by both stores.
//!
//! Pure functions: what each analytics or history column means is decided here once, so
//! PostgreSQL and ClickHouse never disagree about, say, which gift frames count.

use chrono::{DateTime, Utc};
use serde_json::Value;
use ttlc_schemas::UnifiedEvent;
use ttlc_schemas::event::Payload;

/// `payload.rawType` of a RAW event: the TikTok message method nothing else maps.
pub(crate) fn raw_type(event: &UnifiedEvent) -> Option<&str> {
    match &event.payload {
        Some(Payload::Raw(raw)) => Some(raw.raw_type.as_str()),
        _ => None,
    }
}

/// ClickHouse `DateTime` is unsigned 32-bit seconds: clamp what it cannot hold rather than fail
/// the batch (the exact time is kept in `timestamp_ms`).
fn datetime_secs(ts: &DateTime<Utc>) -> u32 {
    u32::try_from(ts.timestamp().max(0)).unwrap_or(u32::MAX)
}

/// Current viewer count carried by an event: JOIN's `viewerCount`, or the count in a RAW
/// `WebcastRoomUserSeqMessage` (TikTok's periodic viewer tally), else 0.
fn viewer_count(event: &UnifiedEvent) -> i64 {
    match &event.payload {
        Some(Payload::Join(join)) => join.viewer_count.unwrap_or(0),
        Some(Payload::Raw(raw)) if raw.raw_type == "WebcastRoomUserSeqMessage" => raw
            .data
            .as_ref()
            .and_then(|d| ["viewerCount", "total", "totalUser"].iter().find_map(|k| d.get(*k)))
            .and_then(json_i64)
            .unwrap_or(0),
        _ => 0,
    }
}

/// TikTok sends 64-bit counts as numbers or as decimal strings depending on the decoder.
fn json_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// One row of the ClickHouse `events` table (`migrations/clickhouse/0001_events.sql`).
///
/// Field order is the column order RowBinary relies on; `ch_row_matches_ddl` in the tests checks
/// it against the server.
#[derive(Debug, Clone, serde::Serialize, ::clickhouse::Row)]
pub(crate) struct ChEventRow<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) stream_id: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) event_type: &'static str,
    pub(crate) trigger_id: u8,
    pub(crate) timestamp: u32,
    pub(crate) timestamp_ms: i64,
    pub(crate) ingested_at: u32,
    pub(crate) archived_at: u32,
    pub(crate) source: &'static str,
    pub(crate) seq_no: Option<i64>,
    pub(crate) user_id: &'a str,
    pub(crate) unique_id: &'a str,
    pub(crate) display_name: &'a str,
    pub(crate) is_moderator: u8,
    pub(crate) is_subscriber: u8,
    pub(crate) follow_role: i8,
    pub(crate) raw_type: &'a str,
    pub(crate) message_length: u32,
    pub(crate) gift_id: i64,
    pub(crate) gift_name: &'a str,
    pub(crate) gift_count: i64,
    pub(crate) coins: i64,
    pub(crate) diamonds: i64,
    pub(crate) is_final_gift: u8,
    pub(crate) like_count: i64,
    pub(crate) total_like_count: i64,
    pub(crate) viewer_count: i64,
    pub(crate) sub_month: i64,
    pub(crate) emote_id: &'a str,
}

impl<'a> ChEventRow<'a> {
    /// The row for `event`, archived at `now`. Borrows the event's strings: no copies per row.
    pub(crate) fn new(event: &'a UnifiedEvent, now: DateTime<Utc>) -> Self {
        let user = &event.user;
        let mut row = ChEventRow {
            event_id: &event.event_id,
            stream_id: &event.stream_id,
            session_id: &event.session_id,
            event_type: event.event_type.as_str(),
            trigger_id: u8::try_from(event.trigger_id).unwrap_or(0),
            timestamp: datetime_secs(&event.timestamp),
            timestamp_ms: event.timestamp.timestamp_millis(),
            ingested_at: event.ingested_at.as_ref().map_or(0, datetime_secs),
            archived_at: datetime_secs(&now),
            source: event.source.as_str(),
            seq_no: event.seq_no,
            user_id: &user.user_id,
            unique_id: &user.unique_id,
            display_name: user.display_name.as_deref().unwrap_or_default(),
            is_moderator: u8::from(user.is_moderator == Some(true)),
            is_subscriber: u8::from(user.is_subscriber == Some(true)),
            follow_role: user.follow_role.and_then(|r| i8::try_from(r).ok()).unwrap_or(0),
            raw_type: raw_type(event).unwrap_or_default(),
            message_length: 0,
            gift_id: 0,
            gift_name: "",
            gift_count: 0,
            coins: 0,
            diamonds: 0,
            is_final_gift: 0,
            like_count: 0,
            total_like_count: 0,
            viewer_count: viewer_count(event),
            sub_month: 0,
            emote_id: "",
        };
        match &event.payload {
            Some(Payload::Chat(chat)) => {
                row.message_length =
                    u32::try_from(chat.message.chars().count()).unwrap_or(u32::MAX);
            }
            Some(Payload::Gift(gift)) => {
                row.gift_id = gift.gift_id;
                row.gift_name = &gift.gift_name;
                row.gift_count = gift.gift_count;
                row.coins = gift.coins;
                row.diamonds = gift.diamond_count.unwrap_or(0);
                row.is_final_gift = u8::from(gift.is_final_frame());
            }
            Some(Payload::Like(like)) => {
                row.like_count = like.like_count;
                row.total_like_count = like.total_like_count;
            }
            Some(Payload::Subscribe(sub)) => row.sub_month = sub.sub_month.unwrap_or(0),
            Some(Payload::Emote(emote)) => row.emote_id = &emote.emote_id,
            _ => {}
        }
        row
    }
}
