//! The golden cases: one named raw.v1 frame per fixture pair.
//!
//! Every protobuf case is written twice: `<name>-b64.json` (dataB64, as direct ingest produces it)
//! and `<name>.json` (the same message in its proto3 JSON `data` form). Lifecycle events and a
//! few alias spellings (TikTok-Live-Connector 1.x flattened events, TikTokLive field names) exist
//! only in the `data` form.

use serde_json::json;
use ttlc_webcast as wc;

use crate::builders::*;

const ROOM: i64 = 7_438_214_567_890_123_456;
const LIVE: Origin = Origin {
    stream_id: ROOM,
    session_id: "3f1c2a9e-8b7d-4c6e-9a1b-2d3e4f5a6b7c",
    provider: "direct",
    source: "live",
};
const MOCK: Origin =
    Origin { provider: "mock", session_id: "6a0d4e2b-1c3f-4b5a-8d7e-9f0a1b2c3d4e", ..LIVE };
/// A replay run of the LIVE session (see `replays`).
pub(crate) const REPLAY: Origin = Origin {
    provider: "replay",
    source: "replay",
    session_id: "0f0e0d0c-0b0a-4908-8706-050403020100",
    ..LIVE
};

/// Every golden case as (file stem, frame).
pub(crate) fn golden() -> Vec<(String, Frame)> {
    let mut out = Vec::new();
    let mut both = |name: &str, frame: Frame| {
        out.push((format!("{name}-b64"), frame.clone()));
        out.push((name.to_owned(), frame.as_json_form()));
    };
    let t = |s: i64| T0_MS + s * 1000;

    // CHAT by a moderator who is a team member (fans club level 5), a subscriber and follows.
    let mut alice = viewer(6_812_345_678_901_234_567, "alice.streams", "Alice ✨", 1);
    alice.badges = vec![badge(1, "", "pm_mt_moderator_im"), badge(10, "5", ""), badge(8, "22", "")];
    let chat = wc::WebcastChatMessage {
        common: common("WebcastChatMessage", 7_301_000_000_000_000_001, ROOM, t(1)),
        user: Some(alice.clone()),
        comment: "hello chat [wave] see you at 8!".to_owned(),
        emotes: vec![wc::webcast_chat_message::ChatEmote {
            place_in_comment: 11,
            emote: Some(wc::Emote {
                emote_id: "7165348912345678901".to_owned(),
                image: image("https://p16-webcast.tiktokcdn.com/webcast-va/sub_emote_wave.webp"),
                emote_type: 0,
            }),
        }],
        content_language: "en".to_owned(),
        user_identity: Some(identity(true, false, true, true)),
    };
    both("chat", Frame::proto(LIVE, "WebcastChatMessage", 7_301_000_000_000_000_001, t(1), &chat));

    // A plain viewer without follow info: follow role comes from the identity flags.
    let mut bob = viewer(6_900_000_000_000_000_002, "bob_b", "Bob", 0);
    bob.follow_info = None;
    let chat2 = wc::WebcastChatMessage {
        common: common("WebcastChatMessage", 7_301_000_000_000_000_002, ROOM, t(2)),
        user: Some(bob.clone()),
        comment: "first time here".to_owned(),
        user_identity: Some(identity(false, true, true, false)),
        ..Default::default()
    };
    both(
        "chat-identity",
        Frame::proto(LIVE, "WebcastChatMessage", 7_301_000_000_000_000_002, t(2), &chat2),
    );

    // GIFT that is not streakable (type 2): final by itself.
    let carol = viewer(6_900_000_000_000_000_003, "carol.c", "Carol", 2);
    let galaxy = gift(
        common("WebcastGiftMessage", 7_301_000_000_000_000_010, ROOM, t(3)),
        carol.clone(),
        GALAXY,
        1,
        true,
        0,
    );
    both(
        "gift-single",
        Frame::proto(LIVE, "WebcastGiftMessage", 7_301_000_000_000_000_010, t(3), &galaxy),
    );

    // A Rose streak: three running frames, then the final frame with repeatEnd.
    let group = 1_732_000_000_123;
    for (i, (count, end)) in [(1, false), (4, false), (9, false), (9, true)].into_iter().enumerate()
    {
        let seq = 7_301_000_000_000_000_020 + i as i64;
        let msg = gift(
            common("WebcastGiftMessage", seq, ROOM, t(4) + 300 * i as i64),
            alice.clone(),
            ROSE,
            count,
            end,
            group,
        );
        let name =
            if end { "gift-streak-end".to_owned() } else { format!("gift-streak-{}", i + 1) };
        both(&name, Frame::proto(LIVE, "WebcastGiftMessage", seq, t(4) + 300 * i as i64, &msg));
    }

    let like = wc::WebcastLikeMessage {
        common: common("WebcastLikeMessage", 7_301_000_000_000_000_030, ROOM, t(6)),
        like_count: 15,
        total_like_count: 48_213,
        user: Some(bob.clone()),
    };
    both("like", Frame::proto(LIVE, "WebcastLikeMessage", 7_301_000_000_000_000_030, t(6), &like));

    let join = wc::WebcastMemberMessage {
        common: common("WebcastMemberMessage", 7_301_000_000_000_000_040, ROOM, t(7)),
        user: Some(viewer(6_900_000_000_000_000_004, "dave.joins", "Dave", 0)),
        member_count: 1_287,
        action: 1,
        ..Default::default()
    };
    both(
        "join",
        Frame::proto(LIVE, "WebcastMemberMessage", 7_301_000_000_000_000_040, t(7), &join),
    );

    // Social messages: TikTok's real display keys, and one key we do not know.
    let socials = [
        (
            "social-follow",
            "pm_main_follow_message_viewer_2",
            "{0:user} followed the LIVE creator",
            1,
        ),
        ("social-share", "pm_mt_guidance_share", "{0:user} shared the LIVE", 3),
        ("social-subscribe", "pm_mt_guidance_viewer_subscribe", "{0:user} subscribed", 0),
        ("social-unknown", "pm_mt_guidance_viewer_10_like", "{0:user} liked the LIVE 10 times", 0),
    ];
    for (i, (name, key, pattern, action)) in socials.into_iter().enumerate() {
        let seq = 7_301_000_000_000_000_050 + i as i64;
        let c = common_with_key("WebcastSocialMessage", seq, ROOM, t(8 + i as i64), key, pattern);
        let msg = social(c, carol.clone(), action);
        both(name, Frame::proto(LIVE, "WebcastSocialMessage", seq, t(8 + i as i64), &msg));
    }

    let sub = wc::WebcastSubNotifyMessage {
        common: common("WebcastSubNotifyMessage", 7_301_000_000_000_000_060, ROOM, t(12)),
        user: Some(bob.clone()),
        sub_month: 3,
        subscribe_type: 1,
        ..Default::default()
    };
    both(
        "subscribe",
        Frame::proto(LIVE, "WebcastSubNotifyMessage", 7_301_000_000_000_000_060, t(12), &sub),
    );

    let emote = wc::WebcastEmoteChatMessage {
        common: common("WebcastEmoteChatMessage", 7_301_000_000_000_000_070, ROOM, t(13)),
        user: Some(alice.clone()),
        emote_list: vec![wc::Emote {
            emote_id: "7165348912345678902".to_owned(),
            image: image("https://p16-webcast.tiktokcdn.com/webcast-va/sub_emote_heart.webp"),
            emote_type: 1,
        }],
        user_identity: Some(identity(true, false, true, false)),
    };
    both(
        "emote",
        Frame::proto(LIVE, "WebcastEmoteChatMessage", 7_301_000_000_000_000_070, t(13), &emote),
    );

    // A battle: opened between two hosts, a score update, the final scores, and a banner.
    let battle_id = 7_440_000_000_000_000_001;
    let hosts =
        [(ROOM, "host.main", "Main Host"), (7_438_000_000_000_000_999, "rival.host", "Rival")];
    let open = wc::WebcastLinkMicBattle {
        common: common("WebcastLinkMicBattle", 7_301_000_000_000_000_080, ROOM, t(14)),
        battle_id,
        action: 4,
        anchor_info: hosts
            .iter()
            .map(|(id, display, nick)| {
                let user = wc::webcast_link_mic_battle::battle_user_info::BattleBaseUserInfo {
                    user_id: *id,
                    nick_name: (*nick).to_owned(),
                    display_id: (*display).to_owned(),
                    avatar_thumb: image("https://p16-sign-va.tiktokcdn.com/host.webp"),
                };
                (*id, wc::webcast_link_mic_battle::BattleUserInfo { user: Some(user) })
            })
            .collect(),
        ..Default::default()
    };
    both(
        "battle-open",
        Frame::bytes(
            LIVE,
            "WebcastLinkMicBattle",
            7_301_000_000_000_000_080,
            t(14),
            encode_battle(&open),
        ),
    );
    for (i, (name, trigger, scores)) in
        [("battle-armies", 1, [1_200, 950]), ("battle-armies-end", 2, [4_810, 5_020])]
            .into_iter()
            .enumerate()
    {
        let seq = 7_301_000_000_000_000_081 + i as i64;
        let mut msg =
            armies(battle_id, &[(hosts[0].0, scores[0]), (hosts[1].0, scores[1])], trigger);
        msg.common = common("WebcastLinkMicArmies", seq, ROOM, t(15 + i as i64));
        let bytes = encode_armies(&msg);
        both(name, Frame::bytes(LIVE, "WebcastLinkMicArmies", seq, t(15 + i as i64), bytes));
    }
    let barrage = wc::WebcastBarrageMessage {
        common: common("WebcastBarrageMessage", 7_301_000_000_000_000_090, ROOM, t(17)),
        msg_type: 8,
        content: Some(wc::Text {
            key: "pm_mt_user_upgrade".to_owned(),
            default_pattern: "{0:user} reached level 23".to_owned(),
        }),
        duration: 3_000,
        user_grade_param: Some(wc::webcast_barrage_message::UserGradeParam {
            current_grade: 23,
            user: Some(carol.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    both(
        "barrage",
        Frame::proto(LIVE, "WebcastBarrageMessage", 7_301_000_000_000_000_090, t(17), &barrage),
    );

    // RAW passthrough: a method we have no mapping for, in both forms. Our protos do not know
    // WebcastRoomUserSeqMessage, so its bytes are hand-encoded: common (1), total user (7).
    let room_seq = json!({
        "common": {"method": "WebcastRoomUserSeqMessage", "msgId": "7301000000000000100", "roomId": ROOM.to_string()},
        "viewerCount": 1290,
        "totalUser": "15422",
        "popStr": "15.4K"
    });
    out.push((
        "raw-room-user-seq".to_owned(),
        Frame::json(LIVE, "WebcastRoomUserSeqMessage", 7_301_000_000_000_000_100, t(18), room_seq),
    ));
    out.push((
        "raw-room-user-seq-b64".to_owned(),
        room_user_seq(LIVE, 7_301_000_000_000_000_101, t(19), 15_430, false),
    ));

    // Lifecycle events (data form only).
    let life = |raw_type: &str, origin: Origin, seq: i64, s: i64, data: serde_json::Value| {
        Frame::json(origin, raw_type, seq, t(s), data)
    };
    out.push((
        "connected-direct".to_owned(),
        life(
            "ControlEvent.CONNECTED",
            LIVE,
            0,
            0,
            json!({"roomId": ROOM.to_string(), "provider": "direct", "uniqueId": "host.main"}),
        ),
    ));
    out.push((
        "connected-mock".to_owned(),
        life(
            "ControlEvent.CONNECTED",
            MOCK,
            0,
            0,
            json!({"roomId": ROOM.to_string(), "provider": "mock"}),
        ),
    ));
    out.push(("disconnected".to_owned(), life("ControlEvent.DISCONNECTED", LIVE, 0, 20, json!({"code": 1006, "reason": "websocket closed without a close frame", "willReconnect": true}))));
    out.push(("error".to_owned(), life("ControlEvent.ERROR", LIVE, 0, 21, json!({"message": "sign server answered 429 Too Many Requests", "code": "SIGN_RATE_LIMITED"}))));

    // Other producers' spellings of the data form.
    out.push((
        "chat-connector-v1".to_owned(),
        Frame::json(
            LIVE,
            "WebcastChatMessage",
            7_301_000_000_000_000_110,
            t(22),
            json!({
                "comment": "flattened 1.x event",
                "userId": "6900000000000000005",
                "uniqueId": "erin.e",
                "nickname": "Erin",
                "profilePictureUrl": "https://p16-sign-va.tiktokcdn.com/erin.jpeg",
                "followRole": 1,
                "isModerator": true,
                "isSubscriber": true,
                "teamMemberLevel": 2,
                "userBadges": [{"type": "pm_mt_moderator_im", "name": "Moderator"}],
                "msgId": "7301000000000000110",
                "createTime": "1795201222000"
            }),
        ),
    ));
    out.push(("gift-tiktoklive".to_owned(), Frame::json(LIVE, "WebcastGiftMessage", 7_301_000_000_000_000_111, t(23), json!({
        "baseMessage": {"method": "WebcastGiftMessage", "messageId": "7301000000000000111", "roomId": ROOM.to_string()},
        "repeatCount": 3,
        "repeatEnd": 0,
        "groupId": "1732000000999",
        "fromUser": {"id": "6900000000000000006", "nickName": "Frank", "username": "frank.f", "avatarThumb": {"mUrls": ["https://p16-sign-va.tiktokcdn.com/frank.webp"]}},
        "mGift": {"id": "5487", "name": "Finger Heart", "type": 1, "diamondCount": 5, "image": {"mUrls": ["https://p19-webcast.tiktokcdn.com/5487.webp"]}}
    }))));
    let replays = replays(&out);
    out.extend(replays);
    out
}

/// Replay runs of stored events, as the replay provider publishes them: the stored UnifiedEvent
/// (here: what the live fixture normalizes to) in `data.unifiedEvent`, type `Replay.<EVENTTYPE>`.
/// CONNECTED shows the contract's provider being dropped, RAW the passthrough type.
fn replays(live: &[(String, Frame)]) -> Vec<(String, Frame)> {
    let mut out = Vec::new();
    for (name, source) in [
        ("replay-gift", "gift-streak-end"),
        ("replay-connected", "connected-direct"),
        ("replay-raw", "raw-room-user-seq"),
    ] {
        let (_, frame) = live.iter().find(|(n, _)| n == source).expect("live fixture");
        let bytes = serde_json::to_vec(&frame.envelope()).expect("envelope");
        let event = ttlc_normalize::normalize_bytes(&bytes).expect("live fixture normalizes");
        let raw_type = format!("Replay.{}", event.event_type);
        let data = json!({
            "unifiedEvent": serde_json::to_value(&event).expect("event to JSON"),
            "replayOf": LIVE.session_id,
        });
        out.push((
            name.to_owned(),
            Frame::json(REPLAY, &raw_type, frame.seq_no, frame.ts_ms, data),
        ));
    }
    out
}
