//! Builders for webcast messages and raw.v1 envelopes, shared by the golden cases and the demo mix.
//!
//! Messages are built with our prost types and encoded to real protobuf bytes; the `data` form is
//! rendered from those bytes by prost-reflect, so both forms always describe the same message.

use std::collections::HashMap;

use base64::Engine as _;
use chrono::DateTime;
use prost::Message;
use serde_json::{Map, Value, json};
use ttlc_webcast as wc;

/// 2026-11-20T19:00:00Z, the start of every fixture's timeline.
pub(crate) const T0_MS: i64 = 1_795_201_200_000;

/// Where a frame came from, as raw.v1 says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) stream_id: i64,
    pub(crate) session_id: &'static str,
    pub(crate) provider: &'static str,
    pub(crate) source: &'static str,
}

/// A message body in one of the two raw.v1 forms.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Proto(Vec<u8>),
    Json(Map<String, Value>),
}

/// One raw.v1 envelope to write.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) origin: Origin,
    pub(crate) raw_type: String,
    pub(crate) seq_no: i64,
    pub(crate) ts_ms: i64,
    pub(crate) body: Body,
}

impl Frame {
    pub(crate) fn proto(
        origin: Origin,
        raw_type: &str,
        seq_no: i64,
        ts_ms: i64,
        msg: &impl Message,
    ) -> Self {
        let body = Body::Proto(msg.encode_to_vec());
        Frame { origin, raw_type: raw_type.to_owned(), seq_no, ts_ms, body }
    }

    /// A frame from already-encoded bytes (see [`encode_armies`], [`encode_battle`]).
    pub(crate) fn bytes(
        origin: Origin,
        raw_type: &str,
        seq_no: i64,
        ts_ms: i64,
        bytes: Vec<u8>,
    ) -> Self {
        Frame { origin, raw_type: raw_type.to_owned(), seq_no, ts_ms, body: Body::Proto(bytes) }
    }

    pub(crate) fn json(
        origin: Origin,
        raw_type: &str,
        seq_no: i64,
        ts_ms: i64,
        data: Value,
    ) -> Self {
        let Value::Object(map) = data else { panic!("data must be an object") };
        Frame { origin, raw_type: raw_type.to_owned(), seq_no, ts_ms, body: Body::Json(map) }
    }

    /// The same frame in the `data` form, rendered from its protobuf bytes.
    pub(crate) fn as_json_form(&self) -> Frame {
        let Body::Proto(bytes) = &self.body else { return self.clone() };
        let map = crate::protojson::to_json(&self.raw_type, bytes)
            .unwrap_or_else(|| panic!("no proto for {}", self.raw_type));
        Frame { body: Body::Json(map), ..self.clone() }
    }

    pub(crate) fn envelope(&self) -> Value {
        let mut env = json!({
            "schemaVersion": "raw.v1",
            "streamId": self.origin.stream_id.to_string(),
            "sessionId": self.origin.session_id,
            "source": self.origin.source,
            "type": self.raw_type,
            "seqNo": self.seq_no,
            "timestamp": iso(self.ts_ms),
            // Ingest receives a frame a few tens of milliseconds after TikTok stamped it.
            "ingestedAt": iso(self.ts_ms + 37),
            "provider": self.origin.provider,
        });
        let (key, value) = match &self.body {
            Body::Proto(bytes) => {
                ("dataB64", Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)))
            }
            Body::Json(map) => ("data", Value::Object(map.clone())),
        };
        env.as_object_mut().expect("envelope is an object").insert(key.to_owned(), value);
        env
    }
}

pub(crate) fn iso(ms: i64) -> String {
    let ts = DateTime::from_timestamp_millis(ms).expect("timestamp in range");
    ttlc_schemas::time::format(&ts)
}

pub(crate) fn common(
    method: &str,
    msg_id: i64,
    room_id: i64,
    create_ms: i64,
) -> Option<wc::Common> {
    Some(wc::Common {
        method: method.to_owned(),
        msg_id,
        room_id,
        create_time: create_ms,
        ..Default::default()
    })
}

pub(crate) fn common_with_key(
    method: &str,
    msg_id: i64,
    room_id: i64,
    create_ms: i64,
    key: &str,
    pattern: &str,
) -> Option<wc::Common> {
    let mut c = common(method, msg_id, room_id, create_ms)?;
    c.display_text = Some(wc::Text { key: key.to_owned(), default_pattern: pattern.to_owned() });
    Some(c)
}

pub(crate) fn image(url: &str) -> Option<wc::Image> {
    Some(wc::Image {
        url_list: vec![url.to_owned(), url.replace(".webp", ".jpeg")],
        uri: url.rsplit('/').next().unwrap_or_default().to_owned(),
        ..Default::default()
    })
}

/// A viewer with an avatar and follow info, as TikTok sends in most messages.
pub(crate) fn viewer(id: i64, unique_id: &str, nickname: &str, follow_status: i64) -> wc::User {
    wc::User {
        user_id: id,
        nickname: nickname.to_owned(),
        unique_id: unique_id.to_owned(),
        profile_picture: image(&format!(
            "https://p16-sign-va.tiktokcdn.com/tos-maliva-avt-0068/{id}~c5_100x100.webp"
        )),
        follow_info: Some(wc::user::FollowInfo {
            following_count: 120,
            follower_count: 45,
            follow_status,
            push_status: 0,
        }),
        sec_uid: format!("MS4wLjABAAAA{id}"),
        ..Default::default()
    }
}

pub(crate) fn badge(scene: i32, level: &str, text_key: &str) -> wc::BadgeStruct {
    wc::BadgeStruct {
        display_type: if text_key.is_empty() { 1 } else { 2 },
        badge_scene: scene,
        display: true,
        log_extra: Some(wc::badge_struct::PrivilegeLogExtra {
            level: level.to_owned(),
            privilege_id: format!("{}", 7_000_000 + scene),
            ..Default::default()
        }),
        text: (!text_key.is_empty()).then(|| wc::badge_struct::TextBadge {
            display_type: 2,
            key: text_key.to_owned(),
            default_pattern: "Moderator".to_owned(),
        }),
        ..Default::default()
    }
}

pub(crate) fn identity(
    subscriber: bool,
    mutual: bool,
    follower: bool,
    moderator: bool,
) -> wc::UserIdentity {
    wc::UserIdentity {
        is_subscriber_of_anchor: subscriber,
        is_mutual_following_with_anchor: mutual,
        is_follower_of_anchor: follower,
        is_moderator_of_anchor: moderator,
        ..Default::default()
    }
}

/// TikTok's gift catalogue entries used by the fixtures: (id, name, type, unit diamonds).
pub(crate) const ROSE: (i64, &str, i32, i32) = (5655, "Rose", 1, 1);
pub(crate) const TIKTOK: (i64, &str, i32, i32) = (5269, "TikTok", 1, 1);
pub(crate) const FINGER_HEART: (i64, &str, i32, i32) = (5487, "Finger Heart", 1, 5);
pub(crate) const DOUGHNUT: (i64, &str, i32, i32) = (5879, "Doughnut", 1, 30);
pub(crate) const GALAXY: (i64, &str, i32, i32) = (11046, "Galaxy", 2, 1000);

#[allow(clippy::too_many_arguments)]
pub(crate) fn gift(
    c: Option<wc::Common>,
    user: wc::User,
    g: (i64, &str, i32, i32),
    repeat_count: i32,
    repeat_end: bool,
    group_id: u64,
) -> wc::WebcastGiftMessage {
    wc::WebcastGiftMessage {
        common: c,
        gift_id: g.0,
        repeat_count,
        combo_count: repeat_count,
        group_count: 1,
        repeat_end: i32::from(repeat_end),
        group_id,
        user: Some(user),
        gift_details: Some(wc::webcast_gift_message::Gift {
            gift_image: image(&format!(
                "https://p19-webcast.tiktokcdn.com/img/maliva/webcast-va/{}~tplv-obj.webp",
                g.0
            )),
            describe: format!("sent {}", g.1),
            id: g.0,
            combo: g.2 == 1,
            gift_type: g.2,
            diamond_count: g.3,
            gift_name: g.1.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn social(
    c: Option<wc::Common>,
    user: wc::User,
    action: i64,
) -> wc::WebcastSocialMessage {
    wc::WebcastSocialMessage {
        common: c,
        user: Some(user),
        action,
        share_type: if action == 3 { 1 } else { 0 },
        follow_count: 1_234,
        ..Default::default()
    }
}

pub(crate) fn armies(
    battle_id: i64,
    sides: &[(i64, i64)],
    trigger_reason: i32,
) -> wc::WebcastLinkMicArmies {
    wc::WebcastLinkMicArmies {
        battle_id,
        trigger_reason,
        armies: sides
            .iter()
            .map(|(host, score)| {
                let army = wc::battle_user_armies::BattleUserArmy {
                    user_id: host + 1,
                    score: score / 2,
                    nickname: "top fan".to_owned(),
                    ..Default::default()
                };
                (
                    *host,
                    wc::BattleUserArmies {
                        user_armies: vec![army],
                        host_score: *score,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// prost writes map fields in `HashMap` order, which changes from run to run; fixtures must be
/// byte-stable, so maps are cleared before encoding and their entries appended sorted by key.
/// A map field is a repeated message field of `{key = 1, value = 2}` entries on the wire.
fn append_sorted_map<V: Message>(buf: &mut Vec<u8>, tag: u32, map: &HashMap<i64, V>) {
    let mut keys: Vec<&i64> = map.keys().collect();
    keys.sort();
    for k in keys {
        let mut entry = Vec::new();
        entry.push(0x08);
        varint(&mut entry, *k as u64);
        let value = map[k].encode_to_vec();
        entry.push(0x12);
        varint(&mut entry, value.len() as u64);
        entry.extend_from_slice(&value);
        varint(buf, u64::from(tag << 3 | 2));
        varint(buf, entry.len() as u64);
        buf.extend_from_slice(&entry);
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn encode_armies(msg: &wc::WebcastLinkMicArmies) -> Vec<u8> {
    let mut m = msg.clone();
    let armies = std::mem::take(&mut m.armies);
    let mut buf = m.encode_to_vec();
    append_sorted_map(&mut buf, 3, &armies);
    buf
}

pub(crate) fn encode_battle(msg: &wc::WebcastLinkMicBattle) -> Vec<u8> {
    let mut m = msg.clone();
    let (results, armies, anchors) = (
        std::mem::take(&mut m.battle_result),
        std::mem::take(&mut m.armies),
        std::mem::take(&mut m.anchor_info),
    );
    let mut buf = m.encode_to_vec();
    append_sorted_map(&mut buf, 5, &results);
    append_sorted_map(&mut buf, 9, &armies);
    append_sorted_map(&mut buf, 10, &anchors);
    buf
}

/// `WebcastRoomUserSeqMessage` (viewer count updates), a method ttlc has no proto for: its bytes
/// are written by hand (common = 1, total = 7) and its data form is what a decoder would emit.
pub(crate) fn room_user_seq(
    origin: Origin,
    seq: i64,
    ts_ms: i64,
    total: i64,
    json_form: bool,
) -> Frame {
    let raw_type = "WebcastRoomUserSeqMessage";
    if json_form {
        let data = json!({
            "common": {"method": raw_type, "msgId": seq.to_string(), "roomId": origin.stream_id.to_string()},
            "total": total.to_string(),
            "popStr": format!("{total}"),
        });
        return Frame::json(origin, raw_type, seq, ts_ms, data);
    }
    let c = common(raw_type, seq, origin.stream_id, ts_ms).unwrap_or_default().encode_to_vec();
    let mut bytes = vec![0x0a];
    varint(&mut bytes, c.len() as u64);
    bytes.extend_from_slice(&c);
    bytes.push(0x38);
    varint(&mut bytes, total as u64);
    Frame::bytes(origin, raw_type, seq, ts_ms, bytes)
}
