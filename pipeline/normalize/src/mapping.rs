//! The mapping rules themselves, independent of the payload form.
//!
//! Both readers (`from_json` for `data`, `from_proto` for `dataB64`) only extract facts; every
//! decision — what makes a moderator, which social key is a follow, what a gift is worth, when a
//! streak ends, which battle phase an action means — is made here, once, so the two forms cannot
//! drift apart.

use ttlc_schemas::event::{
    BattleParticipant, BattlePayload, BattleStatus, GiftPayload, JoinPayload, SocialPayload,
    SubscribePayload,
};
use ttlc_schemas::{EventType, Payload, User};

/// A normalized event body: what varies per raw type.
#[derive(Debug)]
pub(crate) struct Mapped {
    pub(crate) event_type: EventType,
    pub(crate) user: User,
    pub(crate) payload: Option<Payload>,
}

impl Mapped {
    /// An event whose type follows from its payload.
    pub(crate) fn of(user: User, payload: Payload) -> Self {
        Mapped { event_type: payload.event_type(), user, payload: Some(payload) }
    }

    /// An event with nothing type-specific to say: the payload is left out rather than `{}`.
    pub(crate) fn bare(event_type: EventType, user: User) -> Self {
        Mapped { event_type, user, payload: None }
    }
}

/// What a message says about its user, before the rules below are applied.
#[derive(Debug, Default)]
pub(crate) struct UserFacts {
    pub(crate) user_id: String,
    pub(crate) unique_id: String,
    pub(crate) nickname: String,
    pub(crate) avatar_url: Option<String>,
    /// `followInfo.followStatus` when the message carried follow info.
    pub(crate) follow_status: Option<i64>,
    pub(crate) moderator: bool,
    pub(crate) subscriber: bool,
    pub(crate) team_level: Option<i64>,
}

/// The sender's relation to the host as chat, gift and emote messages state it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdentityFacts {
    pub(crate) subscriber: bool,
    pub(crate) mutual: bool,
    pub(crate) follower: bool,
    pub(crate) moderator: bool,
}

/// TikTok badge scenes that carry a meaning for us (`BadgeSceneType`).
pub(crate) mod scene {
    pub(crate) const ADMIN: i64 = 1;
    pub(crate) const SUBSCRIBER: i64 = 4;
    pub(crate) const NEW_SUBSCRIBER: i64 = 7;
    pub(crate) const FANS: i64 = 10;

    /// The proto3 JSON mapping writes enums by name.
    pub(crate) fn from_name(name: &str) -> i64 {
        match name.strip_prefix("BADGE_SCENE_TYPE_").unwrap_or(name) {
            "ADMIN" => ADMIN,
            "SUBSCRIBER" => SUBSCRIBER,
            "NEW_SUBSCRIBER" => NEW_SUBSCRIBER,
            "FANS" => FANS,
            _ => 0,
        }
    }
}

impl UserFacts {
    /// Applies one badge: admin badges mark moderators, subscriber badges subscribers, and the fans
    /// club badge carries the team member level. A badge whose key names a moderator counts too
    /// (older clients send `pm_mt_moderator_im` without a scene).
    pub(crate) fn badge(&mut self, scene: i64, key: &str, level: Option<i64>) {
        match scene {
            scene::ADMIN => self.moderator = true,
            scene::SUBSCRIBER | scene::NEW_SUBSCRIBER => self.subscriber = true,
            scene::FANS => {
                if let Some(level) = level {
                    self.team_level = Some(level);
                }
            }
            _ => {}
        }
        if contains_ignore_case(key, "moderator") {
            self.moderator = true;
        }
    }
}

/// Builds the contract's user. Follow role comes from follow info, else from the identity flags;
/// moderator/subscriber are true when any source says so; the team level defaults to 0 (the
/// seed's "0 if not a team member").
pub(crate) fn user(f: UserFacts, identity: Option<IdentityFacts>) -> User {
    let id = identity.unwrap_or_default();
    let follow_role = f.follow_status.or_else(|| {
        identity.map(|i| {
            if i.mutual {
                2
            } else if i.follower {
                1
            } else {
                0
            }
        })
    });
    let unique_id = if f.unique_id.is_empty() { f.user_id.clone() } else { f.unique_id };
    User {
        user_id: f.user_id,
        unique_id,
        display_name: Some(f.nickname).filter(|n| !n.is_empty()),
        avatar_url: f.avatar_url,
        follow_role,
        is_moderator: Some(f.moderator || id.moderator),
        is_subscriber: Some(f.subscriber || id.subscriber),
        team_member_level: Some(f.team_level.unwrap_or(0)),
    }
}

/// A numeric TikTok user id as the contract's string; 0 means "not sent", so fall back to the
/// textual id TikTok sometimes sends instead.
pub(crate) fn user_id_text(id: i64, id_str: &str) -> String {
    if id != 0 {
        id.to_string()
    } else if !id_str.is_empty() {
        id_str.to_owned()
    } else {
        "0".to_owned()
    }
}

/// What a gift message says, before valuing it.
#[derive(Debug)]
pub(crate) struct GiftFacts {
    pub(crate) gift_id: i64,
    pub(crate) repeat_count: i64,
    pub(crate) repeat_end: bool,
    pub(crate) gift_type: i64,
    /// Unit price in diamonds (= coins the viewer pays per gift).
    pub(crate) unit_diamonds: i64,
    pub(crate) name: String,
    pub(crate) image_url: Option<String>,
}

/// TikTok's gift type for gifts that repeat while the viewer holds the button.
pub(crate) const STREAKABLE_GIFT_TYPE: i64 = 1;

/// Values a gift frame. A streakable gift is re-sent on every combo step with a growing repeat
/// count, then once more with `repeatEnd`; each frame's `coins` is the running total, so only the
/// final frame (`streakEnd`) — or a gift that is no streak at all — may be counted as money.
pub(crate) fn gift(f: GiftFacts) -> GiftPayload {
    let count = f.repeat_count.max(1);
    let unit = f.unit_diamonds.max(0);
    let streak = f.gift_type == STREAKABLE_GIFT_TYPE;
    GiftPayload {
        gift_id: f.gift_id,
        gift_name: f.name,
        gift_count: count,
        coins: unit.saturating_mul(count),
        diamond_count: Some(unit),
        streak_active: Some(streak && !f.repeat_end),
        streak_end: Some(streak && f.repeat_end),
        gift_image_url: f.image_url,
        is_gift_streak: Some(streak),
    }
}

/// The canonical kinds a social message can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocialKind {
    Follow,
    Share,
    Subscribe,
}

/// Classifies a social display key (`pm_main_follow_message_viewer_2`, `pm_mt_guidance_share`,
/// …) by the word it contains; `None` for keys we do not know, which become RAW events.
pub(crate) fn social_kind(key: &str) -> Option<SocialKind> {
    if contains_ignore_case(key, "follow") {
        Some(SocialKind::Follow)
    } else if contains_ignore_case(key, "share") {
        Some(SocialKind::Share)
    } else if contains_ignore_case(key, "subscribe") {
        Some(SocialKind::Subscribe)
    } else {
        None
    }
}

/// The event for a classified social message, with the contract's canonical `displayType`.
pub(crate) fn social(kind: SocialKind, user: User) -> Mapped {
    let display = |v: &str| SocialPayload { display_type: v.to_owned() };
    match kind {
        SocialKind::Follow => Mapped::of(user, Payload::Follow(display(SocialPayload::FOLLOW))),
        SocialKind::Share => Mapped::of(user, Payload::Share(display(SocialPayload::SHARE))),
        // A social subscribe notice carries no month; SubNotify messages do.
        SocialKind::Subscribe => Mapped::bare(EventType::Subscribe, user),
    }
}

/// JOIN with the fields TikTok actually set (0 means unset in proto3).
pub(crate) fn join(user: User, member_count: i64, action: i64) -> Mapped {
    let payload = JoinPayload {
        viewer_count: (member_count > 0).then_some(member_count),
        action_id: (action != 0).then_some(action),
    };
    if payload.viewer_count.is_none() && payload.action_id.is_none() {
        Mapped::bare(EventType::Join, user)
    } else {
        Mapped::of(user, Payload::Join(payload))
    }
}

/// SUBSCRIBE with its month when TikTok sent one (months count from 1).
pub(crate) fn subscribe(user: User, sub_month: i64) -> Mapped {
    if sub_month >= 1 {
        let payload = SubscribePayload { sub_month: Some(sub_month) };
        Mapped::of(user, Payload::Subscribe(payload))
    } else {
        Mapped::bare(EventType::Subscribe, user)
    }
}

/// `WebcastLinkMicBattle.action`: open starts a battle, finish and cut-short end it; invitations
/// and replies have no phase.
pub(crate) fn battle_status_for_action(action: i64) -> Option<BattleStatus> {
    match action {
        4 => Some(BattleStatus::Started),
        5 | 6 => Some(BattleStatus::Ended),
        _ => None,
    }
}

/// `WebcastLinkMicArmies.triggerReason`: 2 is the final score, anything else an update.
pub(crate) fn armies_status(trigger_reason: i64) -> BattleStatus {
    if trigger_reason == 2 { BattleStatus::Ended } else { BattleStatus::Updated }
}

/// A battle payload; participants are sorted by user id because TikTok sends them as a map,
/// whose order means nothing and would make output nondeterministic.
pub(crate) fn battle(
    battle_id: i64,
    status: Option<BattleStatus>,
    mut participants: Vec<BattleParticipant>,
) -> Option<Payload> {
    participants.sort_by(|a, b| {
        let key = |p: &BattleParticipant| {
            let id = p.user_id.as_deref().unwrap_or("");
            (id.len(), id.to_owned())
        };
        key(a).cmp(&key(b))
    });
    let payload = BattlePayload {
        battle_id: (battle_id != 0).then(|| battle_id.to_string()),
        battle_status: status,
        participants: (!participants.is_empty()).then_some(participants),
    };
    let empty = payload.battle_id.is_none()
        && payload.battle_status.is_none()
        && payload.participants.is_none();
    (!empty).then_some(Payload::Battle(payload))
}

/// `Emote.emoteType` as the seed names it.
pub(crate) fn emote_type_name(t: i64) -> Option<String> {
    match t {
        0 => Some("EMOTETYPENORMAL".to_owned()),
        1 => Some("EMOTETYPEWITHSTICKER".to_owned()),
        _ => None,
    }
}

/// ASCII case-insensitive substring test without allocating.
pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(gift_type: i64, repeat_count: i64, repeat_end: bool) -> GiftFacts {
        GiftFacts {
            gift_id: 5655,
            repeat_count,
            repeat_end,
            gift_type,
            unit_diamonds: 1,
            name: "Rose".into(),
            image_url: None,
        }
    }

    #[test]
    fn streak_frames_and_final() {
        let mid = gift(facts(1, 3, false));
        assert_eq!(
            (mid.streak_active, mid.streak_end, mid.is_gift_streak),
            (Some(true), Some(false), Some(true))
        );
        assert!(!mid.is_final_frame());
        let end = gift(facts(1, 5, true));
        assert_eq!((end.streak_active, end.streak_end), (Some(false), Some(true)));
        assert_eq!(end.coins, 5);
        assert!(end.is_final_frame());
        let single = gift(GiftFacts { unit_diamonds: 99, ..facts(2, 1, false) });
        assert_eq!((single.is_gift_streak, single.coins), (Some(false), 99));
        assert!(single.is_final_frame());
    }

    #[test]
    fn social_keys() {
        assert_eq!(social_kind("pm_main_follow_message_viewer_2"), Some(SocialKind::Follow));
        assert_eq!(social_kind("pm_mt_guidance_share"), Some(SocialKind::Share));
        assert_eq!(social_kind("pm_mt_msg_viewer_SHARE"), Some(SocialKind::Share));
        assert_eq!(social_kind("live_subscribe_notice"), Some(SocialKind::Subscribe));
        assert_eq!(social_kind("pm_mt_guidance_viewer_10_like"), None);
        assert_eq!(social_kind(""), None);
    }

    #[test]
    fn battle_participants_sorted_numerically() {
        let p = |id: &str| BattleParticipant { user_id: Some(id.into()), ..Default::default() };
        let Some(Payload::Battle(b)) = battle(7, None, vec![p("100"), p("9"), p("20")]) else {
            panic!("expected a battle payload")
        };
        let ids: Vec<_> = b.participants.unwrap().into_iter().map(|p| p.user_id.unwrap()).collect();
        assert_eq!(ids, ["9", "20", "100"]);
        assert!(battle(0, None, vec![]).is_none());
    }
}
