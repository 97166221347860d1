//! `fixtures/demo/mixed.ndjson`: a realistic evening across five channels for demos and benches.
//!
//! Mostly chat, likes and joins; gifts with real streak sequences (running frames, then the final
//! one); follows and shares; a battle on the first channel; some RAW traffic (room viewer counts,
//! unknown social keys). Three channels
//! come from direct ingest (`dataB64`), one from Euler (`data`), one from the mock provider. A fixed
//! seed keeps the file byte-for-byte reproducible.

use serde_json::json;
use ttlc_webcast as wc;

use crate::builders::*;

/// SplitMix64: tiny, deterministic, good enough to pick event types.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const CHANNELS: [(i64, &str, &str); 5] = [
    (7_440_100_000_000_000_001, "direct", "9b2f6c1a-3d4e-4f5a-8b6c-7d8e9f0a1b2c"),
    (7_440_100_000_000_000_002, "direct", "1c3e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d"),
    (7_440_100_000_000_000_003, "direct", "2d4f6b8c-0e1a-4b3c-9d5e-7f9a1b3c5d7e"),
    (7_440_100_000_000_000_004, "euler", "3e5a7c9d-1f2b-4c4d-8e6f-8a0b2c4d6e8f"),
    (7_440_100_000_000_000_005, "mock", "4f6b8d0e-2a3c-4d5e-9f7a-9b1c3d5e7f9a"),
];

const PHRASES: [&str; 12] = [
    "hi from Lisbon!",
    "lol",
    "what game is this?",
    "first time catching you live 🔥",
    "can you say hi to my sister",
    "W stream",
    "🌹🌹🌹",
    "how long have you been streaming?",
    "that was insane",
    "play the song again",
    "gg",
    "where did you get that hoodie",
];

const STREAK_GIFTS: [(i64, &str, i32, i32); 4] = [ROSE, TIKTOK, FINGER_HEART, DOUGHNUT];

/// Events per channel, lifecycle frames not counted.
const EVENTS_PER_CHANNEL: usize = 640;

pub(crate) fn mixed() -> Vec<Frame> {
    let mut rng = Rng(0x7474_6c63_2026);
    let mut frames = Vec::new();
    for (ch, (room, provider, session)) in CHANNELS.into_iter().enumerate() {
        let origin = Origin { stream_id: room, session_id: session, provider, source: "live" };
        let json_form = provider == "euler";
        let viewers: Vec<wc::User> = (0..40)
            .map(|i| {
                let id = 6_800_000_000_000_000_000 + (ch as i64) * 1_000_000 + i * 7_919;
                let mut u = viewer(id, &format!("viewer{ch}_{i}"), &format!("Viewer {i}"), i % 3);
                if i % 13 == 0 {
                    u.badges = vec![badge(1, "", "pm_mt_moderator_im")];
                } else if i % 7 == 0 {
                    u.badges = vec![badge(4, "", ""), badge(10, &format!("{}", 1 + i % 9), "")];
                }
                u
            })
            .collect();
        let mut ts = T0_MS + (ch as i64) * 4_321;
        let mut seq = 7_400_000_000_000_000_000 + (ch as i64) * 10_000_000;
        let connected = json!({"roomId": room.to_string(), "provider": provider});
        frames.push(Frame::json(origin, "ControlEvent.CONNECTED", 0, ts, connected));
        let mut emitted = 0;
        let mut battle_done = false;
        while emitted < EVENTS_PER_CHANNEL {
            ts += 200 + rng.below(1_600) as i64;
            let user = rng.pick(&viewers).clone();
            let mut push =
                |frame: Frame| frames.push(if json_form { frame.as_json_form() } else { frame });
            let roll = rng.below(100);
            seq += 1;
            let c = move |method: &str| common(method, seq, room, ts);
            match roll {
                0..=33 => {
                    let m = wc::WebcastChatMessage {
                        common: c("WebcastChatMessage"),
                        user: Some(user),
                        comment: (*rng.pick(&PHRASES)).to_owned(),
                        ..Default::default()
                    };
                    push(Frame::proto(origin, "WebcastChatMessage", seq, ts, &m));
                }
                34..=57 => {
                    let m = wc::WebcastLikeMessage {
                        common: c("WebcastLikeMessage"),
                        like_count: 1 + rng.below(15) as i32,
                        total_like_count: 1_000 + (emitted as i64) * 9,
                        user: Some(user),
                    };
                    push(Frame::proto(origin, "WebcastLikeMessage", seq, ts, &m));
                }
                58..=75 => {
                    let m = wc::WebcastMemberMessage {
                        common: c("WebcastMemberMessage"),
                        user: Some(user),
                        member_count: 200 + (emitted as i32) / 3,
                        action: 1,
                        ..Default::default()
                    };
                    push(Frame::proto(origin, "WebcastMemberMessage", seq, ts, &m));
                }
                76..=80 => {
                    if rng.below(10) < 7 {
                        // A streak: running frames a few hundred ms apart, then the final frame.
                        let g = *rng.pick(&STREAK_GIFTS);
                        let frames_in_streak = 2 + rng.below(5) as i32;
                        let group = 1_732_000_000_000 + seq % 1_000_000;
                        for k in 1..=frames_in_streak {
                            let end = k == frames_in_streak;
                            let count = if end { k - 1 } else { k };
                            let m = gift(
                                common("WebcastGiftMessage", seq, room, ts),
                                user.clone(),
                                g,
                                count.max(1),
                                end,
                                group as u64,
                            );
                            push(Frame::proto(origin, "WebcastGiftMessage", seq, ts, &m));
                            seq += 1;
                            ts += 250;
                            emitted += 1;
                        }
                        continue;
                    }
                    let m = gift(c("WebcastGiftMessage"), user, GALAXY, 1, true, 0);
                    push(Frame::proto(origin, "WebcastGiftMessage", seq, ts, &m));
                }
                81..=86 => {
                    let (key, action) = if rng.below(10) < 6 {
                        ("pm_main_follow_message_viewer_2", 1)
                    } else {
                        ("pm_mt_guidance_share", 3)
                    };
                    let m = social(
                        common_with_key("WebcastSocialMessage", seq, room, ts, key, "{0:user}"),
                        user,
                        action,
                    );
                    push(Frame::proto(origin, "WebcastSocialMessage", seq, ts, &m));
                }
                87..=88 => {
                    let m = wc::WebcastEmoteChatMessage {
                        common: c("WebcastEmoteChatMessage"),
                        user: Some(user),
                        emote_list: vec![wc::Emote {
                            emote_id: "7165348912345678902".to_owned(),
                            image: image(
                                "https://p16-webcast.tiktokcdn.com/webcast-va/sub_emote_heart.webp",
                            ),
                            emote_type: 0,
                        }],
                        ..Default::default()
                    };
                    push(Frame::proto(origin, "WebcastEmoteChatMessage", seq, ts, &m));
                }
                89 => {
                    let m = wc::WebcastSubNotifyMessage {
                        common: c("WebcastSubNotifyMessage"),
                        user: Some(user),
                        sub_month: 1 + rng.below(12) as i64,
                        ..Default::default()
                    };
                    push(Frame::proto(origin, "WebcastSubNotifyMessage", seq, ts, &m));
                }
                90..=96 => {
                    // A method we have no mapping for: passes through as RAW.
                    let viewers_now = 200 + (emitted as i64) / 3;
                    push(room_user_seq(origin, seq, ts, viewers_now, json_form));
                }
                _ => {
                    // Also RAW: a social message whose display key we do not know.
                    let key = "pm_mt_guidance_viewer_10_like";
                    let m = social(
                        common_with_key("WebcastSocialMessage", seq, room, ts, key, "{0:user}"),
                        user,
                        0,
                    );
                    push(Frame::proto(origin, "WebcastSocialMessage", seq, ts, &m));
                }
            }
            emitted += 1;
            if ch == 0 && !battle_done && emitted >= EVENTS_PER_CHANNEL / 3 {
                battle(origin, &mut seq, &mut ts, &mut frames);
                battle_done = true;
            }
        }
        let bye = json!({"code": 1000, "reason": "stream ended", "willReconnect": false});
        frames.push(Frame::json(origin, "ControlEvent.DISCONNECTED", 0, ts + 1_000, bye));
    }
    frames.sort_by_key(|f| f.ts_ms);
    frames
}

/// A whole battle on one channel: opened, six score updates, final scores.
fn battle(origin: Origin, seq: &mut i64, ts: &mut i64, frames: &mut Vec<Frame>) {
    let room = origin.stream_id;
    let rival = 7_440_199_999_999_999_999;
    let battle_id = 7_441_000_000_000_000_777;
    *seq += 1;
    *ts += 500;
    let open = wc::WebcastLinkMicBattle {
        common: common("WebcastLinkMicBattle", *seq, room, *ts),
        battle_id,
        action: 4,
        ..Default::default()
    };
    frames.push(Frame::bytes(origin, "WebcastLinkMicBattle", *seq, *ts, encode_battle(&open)));
    for step in 1..=7 {
        *seq += 1;
        *ts += 700;
        let last = step == 7;
        let mut m =
            armies(battle_id, &[(room, step * 310), (rival, step * 290)], if last { 2 } else { 1 });
        m.common = common("WebcastLinkMicArmies", *seq, room, *ts);
        frames.push(Frame::bytes(origin, "WebcastLinkMicArmies", *seq, *ts, encode_armies(&m)));
    }
}
