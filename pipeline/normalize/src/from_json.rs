//! Reads the `data` form: the message decoded to JSON by whoever ingested it.
//!
//! The primary shape is the proto3 JSON mapping of our protos (what TikTok-Live-Connector 2.x
//! emits: `common`, `user`, `comment`, `giftDetails`, …). TikTokLive's spellings (`baseMessage`,
//! `userInfo`, `nickName`, …) and TikTok-Live-Connector 1.x's flattened events (`userId`,
//! `giftName`, `displayType` at the top level) are accepted as aliases. Absent fields read as
//! proto3 defaults so that `data` and `dataB64` of the same message normalize identically.

use serde_json::{Map, Value};
use ttlc_schemas::event::{
    BattleParticipant, ChatEmote, ChatPayload, EmotePayload, LikePayload, RawPayload,
};
use ttlc_schemas::{EventType, Payload, User};

use crate::json::{Invalid, Obj};
use crate::kind::Kind;
use crate::mapping::{self, GiftFacts, IdentityFacts, Mapped, UserFacts, scene};

type R<T> = Result<T, Invalid>;

/// Maps a non-lifecycle message from its JSON form. `None` means RAW passthrough: the caller
/// wraps the whole `data` object, moving it when it owns it.
pub(crate) fn map(kind: Kind, o: Obj<'_>) -> R<Option<Mapped>> {
    Ok(Some(match kind {
        Kind::Chat => chat(o)?,
        Kind::Gift => gift(o)?,
        Kind::Like => like(o)?,
        Kind::Member => {
            mapping::join(user(o)?, o.i64(MEMBER_COUNT)?.unwrap_or(0), member_action(o)?)
        }
        Kind::Social => match mapping::social_kind(social_key(o)?.unwrap_or("")) {
            Some(kind) => mapping::social(kind, user(o)?),
            None => return Ok(None),
        },
        Kind::SubNotify => {
            mapping::subscribe(user(o)?, o.i64(&["subMonth", "sub_month"])?.unwrap_or(0))
        }
        Kind::EmoteChat => emote_chat(o)?,
        Kind::LinkMicBattle => link_mic_battle(o)?,
        Kind::LinkMicArmies => link_mic_armies(o)?,
        Kind::Barrage => barrage(o)?,
        Kind::Other => return Ok(None),
        Kind::Connected | Kind::Disconnected | Kind::Error => {
            return Err(Invalid("lifecycle events are mapped by the lifecycle module".into()));
        }
    }))
}

/// RAW passthrough of the whole decoded message.
pub(crate) fn raw(raw_type: &str, data: Map<String, Value>) -> Mapped {
    let payload =
        RawPayload { raw_type: raw_type.to_owned(), data: (!data.is_empty()).then_some(data) };
    Mapped::of(User::system(), Payload::Raw(payload))
}

const MEMBER_COUNT: &[&str] = &["memberCount", "member_count", "count", "viewerCount"];

fn member_action(o: Obj<'_>) -> R<i64> {
    Ok(o.enum_value(&["action", "actionId"], |_| 0)?.unwrap_or(0))
}

/// The message's user: nested (`user`, TikTokLive's `userInfo`/`fromUser`), flattened at the top
/// level (TikTok-Live-Connector 1.x), or the system user when the message has none.
fn user(o: Obj<'_>) -> R<User> {
    let identity = match o.obj(&["userIdentity", "user_identity"])? {
        Some(i) => Some(IdentityFacts {
            subscriber: i.bool(&["isSubscriberOfAnchor"])?.unwrap_or(false),
            mutual: i.bool(&["isMutualFollowingWithAnchor"])?.unwrap_or(false),
            follower: i.bool(&["isFollowerOfAnchor"])?.unwrap_or(false),
            moderator: i.bool(&["isModeratorOfAnchor"])?.unwrap_or(false),
        }),
        None => None,
    };
    let u = match o.obj(&["user", "userInfo", "fromUser"])? {
        Some(u) => u,
        None if o.has(&["userId", "uniqueId"]) => o,
        None => return Ok(User::system()),
    };
    Ok(mapping::user(user_facts(u)?, identity))
}

fn user_facts(u: Obj<'_>) -> R<UserFacts> {
    let id = u.id_text(&["userId", "id", "user_id"])?.filter(|s| !s.is_empty() && s != "0");
    let id = match id {
        Some(id) => id,
        None => u.id_text(&["idStr", "id_str"])?.unwrap_or_else(|| "0".to_owned()),
    };
    let avatar = match u.obj(&["profilePicture", "avatarThumb", "profile_picture"])? {
        Some(img) => img.image_url()?,
        None => {
            u.str(&["profilePictureUrl"])?.filter(|s| crate::json::is_http(s)).map(str::to_owned)
        }
    };
    let follow_status = match u.obj(&["followInfo", "follow_info"])? {
        Some(fi) => Some(fi.i64(&["followStatus", "follow_status"])?.unwrap_or(0)),
        None => u.i64(&["followRole"])?,
    };
    let moderator = match u.obj(&["userAttr", "user_attr"])? {
        Some(a) => {
            a.bool(&["isAdmin", "is_admin"])?.unwrap_or(false)
                || a.bool(&["isSuperAdmin", "is_super_admin"])?.unwrap_or(false)
        }
        None => false,
    };
    let mut f = UserFacts {
        user_id: id,
        unique_id: u
            .str(&["uniqueId", "displayId", "username", "unique_id"])?
            .unwrap_or("")
            .to_owned(),
        nickname: u.str(&["nickname", "nickName"])?.unwrap_or("").to_owned(),
        avatar_url: avatar,
        follow_status,
        moderator: moderator || u.bool(&["isModerator"])?.unwrap_or(false),
        subscriber: u.bool(&["isSubscriber"])?.unwrap_or(false),
        team_level: u.i64(&["teamMemberLevel"])?.filter(|l| *l > 0),
    };
    if let Some(club) = u.obj(&["fansClub", "fans_club"])? {
        if let Some(data) = club.obj(&["data"])? {
            if let Some(level) = data.i64(&["level"])?.filter(|l| *l > 0) {
                f.team_level = Some(level);
            }
        }
    }
    for b in u.objs(&["badges", "badgeList", "userBadges"])? {
        let scene =
            b.enum_value(&["badgeScene", "badgeSceneType", "badge_scene"], scene::from_name)?;
        let key = match (b.obj(&["text", "textBadge"])?, b.obj(&["str", "stringBadge"])?) {
            (Some(t), _) => t.str(&["key"])?,
            (None, Some(s)) => s.str(&["str", "contentStr"])?,
            (None, None) => b.str(&["type"])?,
        };
        let level = match b.obj(&["logExtra", "privilegeLogExtra", "log_extra"])? {
            Some(l) => l.i64(&["level"]).ok().flatten(),
            None => b.i64(&["level"]).ok().flatten(),
        };
        f.badge(scene.unwrap_or(0), key.unwrap_or(""), level);
    }
    Ok(f)
}

fn chat(o: Obj<'_>) -> R<Mapped> {
    let mut emotes = Vec::new();
    for e in o.objs(&["emotes"])? {
        let emote = e.obj(&["emote"])?;
        let (id, url) = match emote {
            Some(em) => (
                em.str(&["emoteId", "emote_id"])?.filter(|s| !s.is_empty()).map(str::to_owned),
                match em.obj(&["image"])? {
                    Some(img) => img.image_url()?,
                    None => None,
                },
            ),
            None => (None, None),
        };
        emotes.push(ChatEmote {
            emote_id: id,
            emote_image_url: url,
            placeholder_index: Some(e.i64(&["placeInComment", "place_in_comment"])?.unwrap_or(0)),
        });
    }
    let payload = ChatPayload {
        message: o.str(&["comment", "content"])?.unwrap_or("").to_owned(),
        emotes: (!emotes.is_empty()).then_some(emotes),
        language: o
            .str(&["contentLanguage", "content_language"])?
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    };
    Ok(Mapped::of(user(o)?, Payload::Chat(payload)))
}

fn gift(o: Obj<'_>) -> R<Mapped> {
    // The flattened 1.x form puts the gift details next to the message fields.
    let details = match o.obj(&["giftDetails", "gift", "mGift", "gift_details"])? {
        Some(d) => d,
        None if o.has(&["giftName", "diamondCount"]) => o,
        None => return Err(Invalid("giftDetails missing: the gift has no price".into())),
    };
    let gift_id = match o.i64(&["giftId", "gift_id"])?.filter(|id| *id != 0) {
        Some(id) => id,
        None => details.i64(&["id"])?.unwrap_or(0),
    };
    let image_url = match details.obj(&["giftImage", "image", "gift_image"])? {
        Some(img) => img.image_url()?,
        None => {
            details.str(&["giftPictureUrl"])?.filter(|s| crate::json::is_http(s)).map(str::to_owned)
        }
    };
    let facts = GiftFacts {
        gift_id,
        repeat_count: o.i64(&["repeatCount", "repeat_count"])?.unwrap_or(0),
        repeat_end: o.bool(&["repeatEnd", "repeat_end"])?.unwrap_or(false),
        gift_type: details.i64(&["giftType", "type", "gift_type"])?.unwrap_or(0),
        unit_diamonds: details.i64(&["diamondCount", "diamond_count"])?.unwrap_or(0),
        name: details.str(&["giftName", "name", "gift_name"])?.unwrap_or("").to_owned(),
        image_url,
    };
    Ok(Mapped::of(user(o)?, Payload::Gift(mapping::gift(facts))))
}

fn like(o: Obj<'_>) -> R<Mapped> {
    let payload = LikePayload {
        like_count: o.i64(&["likeCount", "count", "like_count"])?.unwrap_or(0).max(1),
        total_like_count: o
            .i64(&["totalLikeCount", "total", "total_like_count"])?
            .unwrap_or(0)
            .max(0),
    };
    Ok(Mapped::of(user(o)?, Payload::Like(payload)))
}

/// The social display key: `common.displayText.key` (TikTok-Live-Connector 2.x names it
/// `displayType`), the 1.x `common.eventDetails.displayType`, or a flattened `displayType`.
fn social_key<'a>(o: Obj<'a>) -> R<Option<&'a str>> {
    if let Some(common) = o.obj(&["common", "baseMessage", "event"])? {
        if let Some(text) = common.obj(&["displayText", "display_text"])? {
            if let Some(key) = text.str(&["key", "displayType"])? {
                return Ok(Some(key));
            }
        }
        if let Some(details) = common.obj(&["eventDetails"])? {
            if let Some(key) = details.str(&["displayType"])? {
                return Ok(Some(key));
            }
        }
    }
    Ok(o.str(&["displayType"])?)
}

fn emote_chat(o: Obj<'_>) -> R<Mapped> {
    let list = o.objs(&["emoteList", "emote_list", "emotes"])?;
    let Some(emote) = list.first() else { return Err(Invalid("emoteList is empty".into())) };
    let emote_type = match emote.str(&["emoteType", "emote_type"]) {
        Ok(Some(name)) => Some(name.to_owned()),
        _ => mapping::emote_type_name(emote.i64(&["emoteType", "emote_type"])?.unwrap_or(0)),
    };
    let payload = EmotePayload {
        emote_id: emote.str(&["emoteId", "emote_id"])?.unwrap_or("").to_owned(),
        emote_image_url: match emote.obj(&["image"])? {
            Some(img) => img.image_url()?,
            None => None,
        },
        emote_type,
    };
    Ok(Mapped::of(user(o)?, Payload::Emote(payload)))
}

fn battle_action(name: &str) -> i64 {
    match name.strip_prefix("BATTLE_ACTION_").unwrap_or(name) {
        "OPEN" => 4,
        "FINISH" => 5,
        "CUT_SHORT" => 6,
        _ => 0,
    }
}

fn trigger_reason(name: &str) -> i64 {
    match name.strip_prefix("TRIGGER_REASON_").unwrap_or(name) {
        "SCORE_UPDATE" => 1,
        "BATTLE_END" => 2,
        _ => 0,
    }
}

fn link_mic_battle(o: Obj<'_>) -> R<Mapped> {
    let anchors =
        o.map_entries(&["anchorInfo", "anchor_info"], &["userId", "key"], &["userInfo", "value"])?;
    let results =
        o.map_entries(&["battleResult", "battle_result"], &["userId", "key"], &["value"])?;
    let armies = o.map_entries(&["armies"], &["userId", "key"], &["userArmies", "value"])?;
    let score_of = |id: i64| -> R<Option<i64>> {
        if let Some((_, r)) = results.iter().find(|(k, _)| *k == id) {
            return Ok(r.i64(&["score"])?.or(Some(0)));
        }
        match armies.iter().find(|(k, _)| *k == id) {
            Some((_, a)) => Ok(Some(a.i64(&["hostScore", "host_score"])?.unwrap_or(0))),
            None => Ok(None),
        }
    };
    let mut ids: Vec<i64> = anchors.iter().map(|(k, _)| *k).collect();
    for (k, _) in results.iter().chain(armies.iter()) {
        if !ids.contains(k) {
            ids.push(*k);
        }
    }
    let mut participants = Vec::with_capacity(ids.len());
    for id in ids {
        let base = match anchors.iter().find(|(k, _)| *k == id) {
            Some((_, info)) => info.obj(&["user"])?,
            None => None,
        };
        let (user_id, unique_id, display_name) = match base {
            Some(b) => (
                b.i64(&["userId", "user_id"])?.filter(|v| *v != 0).unwrap_or(id),
                b.str(&["displayId", "display_id"])?.filter(|s| !s.is_empty()).map(str::to_owned),
                b.str(&["nickName", "nick_name", "nickname"])?
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            None => (id, None, None),
        };
        participants.push(BattleParticipant {
            user_id: Some(mapping::user_id_text(user_id, "")),
            unique_id,
            display_name,
            score: score_of(id)?.map(|s| s.max(0)),
        });
    }
    let action = o.enum_value(&["action"], battle_action)?.unwrap_or(0);
    let battle_id = o.i64(&["battleId", "battle_id"])?.unwrap_or(0);
    let payload =
        mapping::battle(battle_id, mapping::battle_status_for_action(action), participants);
    Ok(Mapped { event_type: EventType::Battle, user: User::system(), payload })
}

fn link_mic_armies(o: Obj<'_>) -> R<Mapped> {
    let mut participants = Vec::new();
    for (id, a) in
        o.map_entries(&["armies", "battleItems"], &["userId", "key"], &["userArmies", "value"])?
    {
        participants.push(BattleParticipant {
            user_id: Some(id.to_string()),
            score: Some(a.i64(&["hostScore", "host_score"])?.unwrap_or(0).max(0)),
            ..BattleParticipant::default()
        });
    }
    let reason =
        o.enum_value(&["triggerReason", "trigger_reason", "battleStatus"], trigger_reason)?;
    let status = Some(mapping::armies_status(reason.unwrap_or(0)));
    let battle_id = o.i64(&["battleId", "battle_id"])?.unwrap_or(0);
    let payload = mapping::battle(battle_id, status, participants);
    Ok(Mapped { event_type: EventType::Battle, user: User::system(), payload })
}

fn barrage(o: Obj<'_>) -> R<Mapped> {
    for names in
        [&["userGradeParam", "user_grade_param"][..], &["fansLevelParam", "fans_level_param"]]
    {
        if let Some(param) = o.obj(names)? {
            if let Some(u) = param.obj(&["user"])? {
                return Ok(Mapped::bare(EventType::Battle, mapping::user(user_facts(u)?, None)));
            }
        }
    }
    Ok(Mapped::bare(EventType::Battle, User::system()))
}
