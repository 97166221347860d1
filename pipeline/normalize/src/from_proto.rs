//! Reads the `dataB64` form: the original protobuf message bytes, decoded with our prost types.
//!
//! Decoded messages are owned, so strings are moved out of them rather than copied. Unknown fields
//! are skipped by prost, which is what keeps old captures and new TikTok builds decodable.

use base64::Engine as _;
use prost::Message;
use serde_json::{Map, Value};
use ttlc_schemas::event::{
    BattleParticipant, ChatEmote, ChatPayload, EmotePayload, LikePayload, RawPayload,
};
use ttlc_schemas::{EventType, Payload, User};
use ttlc_webcast as wc;

use crate::error::NormalizeError;
use crate::kind::Kind;
use crate::mapping::{self, GiftFacts, IdentityFacts, Mapped, UserFacts};

/// Lenient about padding: some producers strip it, and the bytes are unambiguous either way.
const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes `b64` and maps it as the message `kind` names.
pub(crate) fn map(kind: Kind, raw_type: &str, b64: &str) -> Result<Mapped, NormalizeError> {
    let bytes = B64.decode(b64).map_err(|e| NormalizeError::InvalidBase64(e.to_string()))?;
    let bytes = bytes.as_slice();
    Ok(match kind {
        Kind::Chat => chat(decode(raw_type, bytes)?),
        Kind::Gift => gift(raw_type, decode(raw_type, bytes)?)?,
        Kind::Like => like(decode(raw_type, bytes)?),
        Kind::Member => member(decode(raw_type, bytes)?),
        Kind::Social => social(raw_type, decode(raw_type, bytes)?, b64),
        Kind::SubNotify => sub_notify(decode(raw_type, bytes)?),
        Kind::EmoteChat => emote_chat(raw_type, decode(raw_type, bytes)?)?,
        Kind::LinkMicBattle => link_mic_battle(decode(raw_type, bytes)?),
        Kind::LinkMicArmies => link_mic_armies(decode(raw_type, bytes)?),
        Kind::Barrage => barrage(decode(raw_type, bytes)?),
        Kind::Connected | Kind::Disconnected | Kind::Error => {
            return Err(NormalizeError::payload(
                raw_type,
                "lifecycle events carry `data`, not protobuf bytes",
            ));
        }
        // No proto for this method: keep the original bytes so a newer normalizer can decode them.
        Kind::Other => {
            let mut data = Map::new();
            data.insert("dataB64".into(), Value::String(b64.to_owned()));
            raw(raw_type, data)
        }
    })
}

fn decode<M: Message + Default>(raw_type: &str, bytes: &[u8]) -> Result<M, NormalizeError> {
    M::decode(bytes).map_err(|e| NormalizeError::InvalidProtobuf {
        raw_type: raw_type.to_owned(),
        error: e.to_string(),
    })
}

fn raw(raw_type: &str, data: Map<String, Value>) -> Mapped {
    Mapped::of(
        User::system(),
        Payload::Raw(RawPayload { raw_type: raw_type.to_owned(), data: Some(data) }),
    )
}

fn image_url(img: Option<&wc::Image>) -> Option<String> {
    img?.url_list.iter().find(|u| crate::json::is_http(u)).cloned()
}

fn user(u: Option<wc::User>, identity: Option<wc::UserIdentity>) -> User {
    let Some(u) = u else { return User::system() };
    let mut f = UserFacts {
        user_id: mapping::user_id_text(u.user_id, &u.id_str),
        unique_id: u.unique_id,
        nickname: u.nickname,
        avatar_url: image_url(u.profile_picture.as_ref()),
        follow_status: u.follow_info.map(|fi| fi.follow_status),
        moderator: u.user_attr.is_some_and(|a| a.is_admin || a.is_super_admin),
        ..UserFacts::default()
    };
    if let Some(level) = u.fans_club.and_then(|c| c.data).map(|d| i64::from(d.level)) {
        f.team_level = (level > 0).then_some(level);
    }
    for b in &u.badges {
        let key = match (&b.text, &b.str) {
            (Some(t), _) => t.key.as_str(),
            (None, Some(s)) => s.str.as_str(),
            (None, None) => "",
        };
        let level = b.log_extra.as_ref().and_then(|l| l.level.parse().ok());
        f.badge(i64::from(b.badge_scene), key, level);
    }
    mapping::user(f, identity.map(identity_facts))
}

fn identity_facts(i: wc::UserIdentity) -> IdentityFacts {
    IdentityFacts {
        subscriber: i.is_subscriber_of_anchor,
        mutual: i.is_mutual_following_with_anchor,
        follower: i.is_follower_of_anchor,
        moderator: i.is_moderator_of_anchor,
    }
}

fn chat(m: wc::WebcastChatMessage) -> Mapped {
    let emotes: Vec<ChatEmote> = m
        .emotes
        .into_iter()
        .map(|e| {
            let emote = e.emote.unwrap_or_default();
            ChatEmote {
                emote_id: Some(emote.emote_id).filter(|s| !s.is_empty()),
                emote_image_url: image_url(emote.image.as_ref()),
                placeholder_index: Some(i64::from(e.place_in_comment)),
            }
        })
        .collect();
    let payload = ChatPayload {
        message: m.comment,
        emotes: (!emotes.is_empty()).then_some(emotes),
        language: Some(m.content_language).filter(|s| !s.is_empty()),
    };
    Mapped::of(user(m.user, m.user_identity), Payload::Chat(payload))
}

fn gift(raw_type: &str, m: wc::WebcastGiftMessage) -> Result<Mapped, NormalizeError> {
    // Without the gift details there is no price: refuse rather than count the gift as free.
    let Some(details) = m.gift_details else {
        return Err(NormalizeError::payload(
            raw_type,
            "giftDetails missing: the gift has no price",
        ));
    };
    let facts = GiftFacts {
        gift_id: if m.gift_id != 0 { m.gift_id } else { details.id },
        repeat_count: i64::from(m.repeat_count),
        repeat_end: m.repeat_end != 0,
        gift_type: i64::from(details.gift_type),
        unit_diamonds: i64::from(details.diamond_count),
        name: details.gift_name,
        image_url: image_url(details.gift_image.as_ref()),
    };
    Ok(Mapped::of(user(m.user, m.user_identity), Payload::Gift(mapping::gift(facts))))
}

fn like(m: wc::WebcastLikeMessage) -> Mapped {
    let payload = LikePayload {
        like_count: i64::from(m.like_count).max(1),
        total_like_count: m.total_like_count.max(0),
    };
    Mapped::of(user(m.user, None), Payload::Like(payload))
}

fn member(m: wc::WebcastMemberMessage) -> Mapped {
    mapping::join(user(m.user, None), i64::from(m.member_count), i64::from(m.action))
}

fn social(raw_type: &str, m: wc::WebcastSocialMessage, b64: &str) -> Mapped {
    let key = m.common.as_ref().and_then(|c| c.display_text.as_ref()).map_or("", |t| &t.key);
    match mapping::social_kind(key) {
        Some(kind) => {
            let user = user(m.user, None);
            mapping::social(kind, user)
        }
        None => raw(raw_type, render_social(&m, b64)),
    }
}

/// An unclassified social message as RAW data: the fields we decoded, in proto3 JSON form (int64
/// as strings, defaults left out), plus the original bytes (our proto declares only part of it).
fn render_social(m: &wc::WebcastSocialMessage, b64: &str) -> Map<String, Value> {
    fn put_str(map: &mut Map<String, Value>, key: &str, v: &str) {
        if !v.is_empty() {
            map.insert(key.to_owned(), Value::String(v.to_owned()));
        }
    }
    fn put_i64(map: &mut Map<String, Value>, key: &str, v: i64) {
        if v != 0 {
            map.insert(key.to_owned(), Value::String(v.to_string()));
        }
    }
    let mut data = Map::new();
    if let Some(c) = &m.common {
        let mut common = Map::new();
        put_str(&mut common, "method", &c.method);
        put_i64(&mut common, "msgId", c.msg_id);
        put_i64(&mut common, "roomId", c.room_id);
        put_i64(&mut common, "createTime", c.create_time);
        if let Some(t) = &c.display_text {
            let mut text = Map::new();
            put_str(&mut text, "key", &t.key);
            put_str(&mut text, "defaultPattern", &t.default_pattern);
            common.insert("displayText".into(), text.into());
        }
        data.insert("common".into(), common.into());
    }
    if let Some(u) = &m.user {
        let mut user = Map::new();
        put_i64(&mut user, "userId", u.user_id);
        put_str(&mut user, "nickname", &u.nickname);
        put_str(&mut user, "uniqueId", &u.unique_id);
        data.insert("user".into(), user.into());
    }
    put_i64(&mut data, "shareType", m.share_type);
    put_i64(&mut data, "action", m.action);
    put_str(&mut data, "shareTarget", &m.share_target);
    put_i64(&mut data, "followCount", m.follow_count);
    if m.share_count != 0 {
        data.insert("shareCount".into(), m.share_count.into());
    }
    data.insert("dataB64".into(), b64.into());
    data
}

fn sub_notify(m: wc::WebcastSubNotifyMessage) -> Mapped {
    mapping::subscribe(user(m.user, None), m.sub_month)
}

fn emote_chat(raw_type: &str, m: wc::WebcastEmoteChatMessage) -> Result<Mapped, NormalizeError> {
    let Some(emote) = m.emote_list.into_iter().next() else {
        return Err(NormalizeError::payload(raw_type, "emoteList is empty"));
    };
    let payload = EmotePayload {
        emote_id: emote.emote_id,
        emote_image_url: image_url(emote.image.as_ref()),
        emote_type: mapping::emote_type_name(i64::from(emote.emote_type)),
    };
    Ok(Mapped::of(user(m.user, m.user_identity), Payload::Emote(payload)))
}

fn link_mic_battle(m: wc::WebcastLinkMicBattle) -> Mapped {
    let mut ids: Vec<i64> = m.anchor_info.keys().copied().collect();
    ids.extend(m.battle_result.keys().filter(|k| !m.anchor_info.contains_key(k)));
    ids.extend(
        m.armies
            .keys()
            .filter(|k| !m.anchor_info.contains_key(k) && !m.battle_result.contains_key(k)),
    );
    let participants = ids
        .into_iter()
        .map(|id| {
            let base = m.anchor_info.get(&id).and_then(|i| i.user.as_ref());
            let score = m
                .battle_result
                .get(&id)
                .map(|r| r.score)
                .or_else(|| m.armies.get(&id).map(|a| a.host_score));
            BattleParticipant {
                user_id: Some(mapping::user_id_text(base.map_or(id, |b| b.user_id), "")),
                unique_id: base.map(|b| b.display_id.clone()).filter(|s| !s.is_empty()),
                display_name: base.map(|b| b.nick_name.clone()).filter(|s| !s.is_empty()),
                score: score.map(|s| s.max(0)),
            }
        })
        .collect();
    let status = mapping::battle_status_for_action(i64::from(m.action));
    battle(mapping::battle(m.battle_id, status, participants))
}

fn link_mic_armies(m: wc::WebcastLinkMicArmies) -> Mapped {
    let participants = m
        .armies
        .iter()
        .map(|(id, a)| BattleParticipant {
            user_id: Some(id.to_string()),
            score: Some(a.host_score.max(0)),
            ..BattleParticipant::default()
        })
        .collect();
    let status = Some(mapping::armies_status(i64::from(m.trigger_reason)));
    battle(mapping::battle(m.battle_id, status, participants))
}

/// Battle messages are about the hosts, not one viewer: they carry the system user.
fn battle(payload: Option<Payload>) -> Mapped {
    Mapped { event_type: EventType::Battle, user: User::system(), payload }
}

fn barrage(m: wc::WebcastBarrageMessage) -> Mapped {
    let u =
        m.user_grade_param.and_then(|p| p.user).or_else(|| m.fans_level_param.and_then(|p| p.user));
    Mapped::bare(EventType::Battle, user(u, None))
}
