//! Rust → apache-avro `Value`: the reference UnifiedEvent encoder and the ActionRequest encoder.

use apache_avro::types::Value as Avro;
use chrono::{DateTime, Utc};

use super::CodecError;
use crate::action::ActionRequest;
use crate::event::{BattleStatus, ConnectedProvider, Payload, UnifiedEvent, User};

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

pub(super) fn unified(e: &UnifiedEvent) -> Result<Avro, CodecError> {
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

pub(super) fn action(a: &ActionRequest) -> Result<Avro, CodecError> {
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
