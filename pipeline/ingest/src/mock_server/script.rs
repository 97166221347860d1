//! Scripted scenarios of the mock TikTok server: which messages a room sends, built from the real
//! webcast message types so the bytes on the wire are what TikTok would send.
//!
//! A script is a list of [`Step`]s, one push frame each. msgId and createTime are filled in when a
//! step is sent, so ids grow per room across reconnects the way TikTok's do.

use std::collections::HashMap;

use prost::Message as _;
use ttlc_webcast::webcast_gift_message::Gift;
use ttlc_webcast::webcast_link_mic_battle::BattleResult;
use ttlc_webcast::{
    BattleUserArmies, Common, Image, Text, User, WebcastChatMessage, WebcastControlMessage,
    WebcastGiftMessage, WebcastLikeMessage, WebcastLinkMicArmies, WebcastLinkMicBattle,
    WebcastMemberMessage, WebcastRoomUserSeqMessage, WebcastSocialMessage,
};

/// What a room does once a client is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Chat comments.
    Chat,
    /// Gift streaks (one complete, one whose end frame never comes) and a non-streak gift.
    Gifts,
    /// Like bursts.
    Likes,
    /// Viewers joining.
    Joins,
    /// Follow and share notices with TikTok's real display keys.
    Social,
    /// A LIVE battle: opened, scores, finished.
    Battle,
    /// A few chats, then a control message ending the stream, then the socket closes.
    StreamEnd,
    /// Messages and frames that cannot be decoded between good ones.
    Undecodable,
    /// The first connection is told to heartbeat far too slowly and is closed for it.
    HeartbeatTimeout,
    /// The first WebSocket handshakes are answered with HTTP 200 instead of 101.
    RefusedHandshake,
    /// The first sign request gets HTTP 429 with `retry-after`.
    Sign429,
    /// Chat, gifts, likes, joins, social and battle in one script.
    All,
    /// No script: only the configured event rate.
    Load,
}

impl Scenario {
    pub const ALL: [Scenario; 13] = [
        Scenario::Chat,
        Scenario::Gifts,
        Scenario::Likes,
        Scenario::Joins,
        Scenario::Social,
        Scenario::Battle,
        Scenario::StreamEnd,
        Scenario::Undecodable,
        Scenario::HeartbeatTimeout,
        Scenario::RefusedHandshake,
        Scenario::Sign429,
        Scenario::All,
        Scenario::Load,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Chat => "chat",
            Scenario::Gifts => "gifts",
            Scenario::Likes => "likes",
            Scenario::Joins => "joins",
            Scenario::Social => "social",
            Scenario::Battle => "battle",
            Scenario::StreamEnd => "stream-end",
            Scenario::Undecodable => "undecodable",
            Scenario::HeartbeatTimeout => "heartbeat-timeout",
            Scenario::RefusedHandshake => "refused-handshake",
            Scenario::Sign429 => "sign-429",
            Scenario::All => "all",
            Scenario::Load => "load",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenario a `@uniqueId` asks for by its prefix (`gifts--alice` → gifts), if any. This
    /// lets one mock serve many scenarios at once without any setup call.
    pub fn from_unique_id(unique_id: &str) -> Option<Scenario> {
        let id = unique_id.trim_start_matches('@');
        id.split_once("--").and_then(|(prefix, _)| Scenario::parse(prefix))
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One webcast message before its Common header is filled in.
#[derive(Debug, Clone)]
pub enum Msg {
    Chat(WebcastChatMessage),
    Gift(WebcastGiftMessage),
    Like(WebcastLikeMessage),
    Member(WebcastMemberMessage),
    Social(WebcastSocialMessage),
    Battle(WebcastLinkMicBattle),
    Armies(WebcastLinkMicArmies),
    Control(WebcastControlMessage),
    ViewerCount(WebcastRoomUserSeqMessage),
    /// Bytes sent as they are under `method`: garbage or a method ttlc has no type for.
    Raw {
        method: String,
        payload: Vec<u8>,
    },
}

macro_rules! with_common {
    ($self:ident, $common:ident, $($variant:ident => $method:literal),*) => {
        match $self {
            $(Msg::$variant(m) => {
                $common.method = $method.into();
                // Keep a display text the script set (social keys), fill in the rest.
                if let Some(old) = m.common.take() {
                    $common.display_text = old.display_text;
                }
                m.common = Some($common);
                ($method.to_owned(), m.encode_to_vec())
            })*
            Msg::Raw { method, payload } => (method.clone(), payload.clone()),
        }
    };
}

impl Msg {
    /// The method name and the encoded message with `common` as its header.
    pub fn encode(&self, mut common: Common) -> (String, Vec<u8>) {
        let mut this = self.clone();
        let this = &mut this;
        with_common!(this, common,
            Chat => "WebcastChatMessage",
            Gift => "WebcastGiftMessage",
            Like => "WebcastLikeMessage",
            Member => "WebcastMemberMessage",
            Social => "WebcastSocialMessage",
            Battle => "WebcastLinkMicBattle",
            Armies => "WebcastLinkMicArmies",
            Control => "WebcastControlMessage",
            ViewerCount => "WebcastRoomUserSeqMessage")
    }

    /// The method name this message is sent under.
    pub fn method(&self) -> String {
        self.encode(Common::default()).0
    }
}

/// One push frame of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// A gzip-compressed "msg" frame carrying these messages.
    Batch(Vec<Msg>),
    /// Bytes that are not a push frame at all.
    GarbageFrame(Vec<u8>),
    /// A "msg" frame whose gzip payload is corrupt.
    CorruptGzip,
    /// A control message ending the stream; the server closes the socket after it.
    EndStream,
}

/// A viewer of the mock.
pub fn user(id: i64, name: &str) -> User {
    User {
        user_id: id,
        nickname: name.to_owned(),
        unique_id: name.to_lowercase(),
        id_str: id.to_string(),
        profile_picture: Some(Image {
            url_list: vec![format!("https://p16.example.invalid/{id}.webp")],
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn chat(user_id: i64, name: &str, text: &str) -> Msg {
    Msg::Chat(WebcastChatMessage {
        user: Some(user(user_id, name)),
        comment: text.into(),
        content_language: "en".into(),
        ..Default::default()
    })
}

/// A gift frame: a streakable Rose (gift type 1, 1 diamond) or a Galaxy that is not streakable
/// (1000 diamonds).
pub fn gift(user_id: i64, name: &str, streakable: bool, repeat: i32, end: bool, group: u64) -> Msg {
    let (gift_id, gift_type, diamonds, gift_name) =
        if streakable { (5655, 1, 1, "Rose") } else { (5901, 2, 1000, "Galaxy") };
    Msg::Gift(WebcastGiftMessage {
        gift_id,
        repeat_count: repeat,
        combo_count: repeat,
        group_count: 1,
        repeat_end: i32::from(end),
        group_id: group,
        user: Some(user(user_id, name)),
        gift_details: Some(Gift {
            id: gift_id,
            gift_type,
            diamond_count: diamonds,
            gift_name: gift_name.into(),
            combo: gift_type == 1,
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn like(user_id: i64, name: &str, count: i32, total: i64) -> Msg {
    Msg::Like(WebcastLikeMessage {
        like_count: count,
        total_like_count: total,
        user: Some(user(user_id, name)),
        ..Default::default()
    })
}

pub fn join(user_id: i64, name: &str, members: i32) -> Msg {
    Msg::Member(WebcastMemberMessage {
        user: Some(user(user_id, name)),
        member_count: members,
        action: 1,
        ..Default::default()
    })
}

/// A social notice; `key` is TikTok's display key (`pm_main_follow_message_viewer_2`,
/// `pm_mt_guidance_share`), which is how follow and share are told apart.
pub fn social(user_id: i64, name: &str, key: &str, action: i64) -> Msg {
    Msg::Social(WebcastSocialMessage {
        common: Some(Common {
            display_text: Some(Text {
                key: key.into(),
                default_pattern: "{0:user} did something".into(),
            }),
            ..Default::default()
        }),
        user: Some(user(user_id, name)),
        action,
        follow_count: 10,
        share_count: i32::from(action == 3),
        ..Default::default()
    })
}

pub fn viewer_count(total: i64) -> Msg {
    Msg::ViewerCount(WebcastRoomUserSeqMessage {
        total,
        total_user: total * 3,
        ..Default::default()
    })
}

fn battle(action: i32, results: &[(i64, i32, i64)]) -> Msg {
    let battle_result: HashMap<i64, BattleResult> = results
        .iter()
        .map(|(id, result, score)| {
            (*id, BattleResult { user_id: *id, result: *result, score: *score })
        })
        .collect();
    Msg::Battle(WebcastLinkMicBattle {
        battle_id: 990_001,
        action,
        battle_result,
        ..Default::default()
    })
}

fn armies(score_a: i64, score_b: i64) -> Msg {
    let side = |s: i64, anchor: &str| BattleUserArmies {
        host_score: s,
        anchor_id_str: anchor.into(),
        ..Default::default()
    };
    let armies = HashMap::from([(101, side(score_a, "101")), (202, side(score_b, "202"))]);
    Msg::Armies(WebcastLinkMicArmies {
        battle_id: 990_001,
        armies,
        trigger_reason: 1,
        ..Default::default()
    })
}

/// The script of a scenario. Each call builds the same steps.
pub fn script(scenario: Scenario) -> Vec<Step> {
    let chats = || {
        vec![
            Step::Batch(vec![chat(1001, "Alice", "hello")]),
            Step::Batch(vec![
                chat(1002, "Bob", "hi there"),
                chat(1001, "Alice", "how is everyone?"),
            ]),
            Step::Batch(vec![chat(1003, "Carol", "🔥🔥🔥")]),
        ]
    };
    let gifts = || {
        vec![
            // A complete streak: 1, 2, 3, then the end frame.
            Step::Batch(vec![gift(2001, "Dave", true, 1, false, 77)]),
            Step::Batch(vec![gift(2001, "Dave", true, 2, false, 77)]),
            Step::Batch(vec![
                gift(2001, "Dave", true, 3, false, 77),
                gift(2001, "Dave", true, 3, true, 77),
            ]),
            // A streak whose end frame never comes: ingest synthesizes it after the quiet period.
            Step::Batch(vec![gift(2002, "Erin", true, 1, false, 88)]),
            Step::Batch(vec![gift(2002, "Erin", true, 2, false, 88)]),
            // A gift that is not streakable.
            Step::Batch(vec![gift(2003, "Frank", false, 1, true, 0)]),
        ]
    };
    let likes = || {
        vec![
            Step::Batch(vec![like(3001, "Gina", 5, 5)]),
            Step::Batch(vec![like(3002, "Hank", 15, 20)]),
        ]
    };
    let joins = || {
        vec![Step::Batch(vec![join(4001, "Ivy", 10)]), Step::Batch(vec![join(4002, "Jack", 11)])]
    };
    let socials = || {
        vec![
            Step::Batch(vec![social(5001, "Kim", "pm_main_follow_message_viewer_2", 1)]),
            Step::Batch(vec![social(5002, "Lee", "pm_mt_guidance_share", 3)]),
        ]
    };
    let battles = || {
        vec![
            Step::Batch(vec![battle(4, &[])]),
            Step::Batch(vec![armies(120, 80)]),
            Step::Batch(vec![battle(5, &[(101, 0, 120), (202, 1, 80)])]),
        ]
    };
    match scenario {
        Scenario::Chat
        | Scenario::HeartbeatTimeout
        | Scenario::RefusedHandshake
        | Scenario::Sign429 => chats(),
        Scenario::Gifts => gifts(),
        Scenario::Likes => likes(),
        Scenario::Joins => joins(),
        Scenario::Social => socials(),
        Scenario::Battle => battles(),
        Scenario::StreamEnd => {
            let mut s = chats();
            s.push(Step::EndStream);
            s
        }
        Scenario::Undecodable => vec![
            Step::Batch(vec![chat(1001, "Alice", "before")]),
            Step::Batch(vec![
                Msg::Raw {
                    method: "WebcastChatMessage".into(),
                    payload: vec![0xff, 0xff, 0xff, 0x07],
                },
                Msg::Raw {
                    method: "WebcastMysteryMessage".into(),
                    payload: b"\x0a\x00\x10\x01".to_vec(),
                },
            ]),
            Step::GarbageFrame(b"\xff\xfenot a push frame".to_vec()),
            Step::CorruptGzip,
            Step::Batch(vec![chat(1002, "Bob", "after")]),
        ],
        Scenario::All => [chats(), gifts(), likes(), joins(), socials(), battles()].concat(),
        Scenario::Load => Vec::new(),
    }
}

/// The methods a client receives from a scenario's script, in order (frame-level garbage
/// excluded; the stream-end control message included).
pub fn expected_methods(scenario: Scenario) -> Vec<String> {
    script(scenario)
        .iter()
        .flat_map(|step| match step {
            Step::Batch(msgs) => msgs.iter().map(Msg::method).collect(),
            Step::EndStream => vec!["WebcastControlMessage".to_owned()],
            Step::GarbageFrame(_) | Step::CorruptGzip => Vec::new(),
        })
        .collect()
}

/// The control message that ends a stream (action 3).
pub fn stream_end() -> Msg {
    Msg::Control(WebcastControlMessage {
        action: 3,
        tips: "The LIVE has ended".into(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_prefixes_select_scenarios() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
        }
        assert_eq!(Scenario::from_unique_id("@gifts--alice"), Some(Scenario::Gifts));
        assert_eq!(Scenario::from_unique_id("@alice"), None);
    }

    #[test]
    fn encode_sets_the_header_and_keeps_display_keys() {
        let (method, bytes) = social(1, "K", "pm_mt_guidance_share", 3)
            .encode(Common { msg_id: 9, ..Default::default() });
        assert_eq!(method, "WebcastSocialMessage");
        let m = WebcastSocialMessage::decode(bytes.as_slice()).unwrap();
        let common = m.common.unwrap();
        assert_eq!(common.msg_id, 9);
        assert_eq!(common.method, "WebcastSocialMessage");
        assert_eq!(common.display_text.unwrap().key, "pm_mt_guidance_share");
    }

    #[test]
    fn all_covers_every_message_family() {
        let methods = expected_methods(Scenario::All);
        for m in [
            "WebcastChatMessage",
            "WebcastGiftMessage",
            "WebcastLikeMessage",
            "WebcastMemberMessage",
            "WebcastSocialMessage",
            "WebcastLinkMicBattle",
            "WebcastLinkMicArmies",
        ] {
            assert!(methods.iter().any(|x| x == m), "{m} missing");
        }
        assert_eq!(
            expected_methods(Scenario::StreamEnd).last().map(String::as_str),
            Some("WebcastControlMessage")
        );
    }
}
