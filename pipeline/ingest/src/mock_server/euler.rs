//! The mock's Euler relay (`GET /euler/ws?uniqueId=…&apiKey=…`): the same room scripts, sent the
//! way Euler Stream sends them, as JSON bundles `{"messages": [{"type", "data"}]}`. A wrong API key
//! is accepted and then closed with 4401, a stream end closes with 4005, garbage is a non-JSON
//! text frame. The JSON carries the fields normalization reads, in proto3 JSON naming.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{MissedTickBehavior, interval};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use ttlc_webcast::{Common, User};

use super::rooms::{Room, Shared};
use super::script::{self, Msg, Step};

type Ws = WebSocketStream<TcpStream>;

/// Serves one relay connection for `room`; `authorized` is whether the API key matched.
pub(crate) async fn serve(
    mut ws: Ws,
    room: Arc<Room>,
    shared: Arc<Shared>,
    authorized: bool,
    shutdown: CancellationToken,
) {
    if !authorized {
        close(&mut ws, 4401, "INVALID_AUTH").await;
        return;
    }
    room.inner.lock().connections += 1;
    let mut tick = interval(shared.config.frame_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                close(&mut ws, 1001, "server shutting down").await;
                return;
            }
            incoming = ws.next() => match incoming {
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return,
                // The relay answers pings (tungstenite does) and needs nothing else from clients.
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => {
                let step = {
                    let mut i = room.inner.lock();
                    let step = room.script.get(i.pos).cloned();
                    if step.is_some() {
                        i.pos += 1;
                    }
                    step
                };
                let Some(step) = step else { continue };
                let (text, ended) = match step {
                    Step::Batch(msgs) => (bundle(&room, &msgs), false),
                    Step::EndStream => (bundle(&room, &[script::stream_end()]), true),
                    Step::GarbageFrame(_) | Step::CorruptGzip => ("{not json".to_owned(), false),
                };
                if ws.send(WsMessage::Text(text.into())).await.is_err() {
                    return;
                }
                if ended {
                    close(&mut ws, 4005, "STREAM_END").await;
                    return;
                }
            }
        }
    }
}

async fn close(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}

/// One JSON bundle; msgIds come from the room's counter like the push socket's.
fn bundle(room: &Room, msgs: &[Msg]) -> String {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut i = room.inner.lock();
    let messages: Vec<Value> = msgs
        .iter()
        .map(|m| {
            let msg_id = Room::take_msg_id(&mut i);
            let common =
                Common { msg_id, room_id: room.id, create_time: now_ms, ..Default::default() };
            let (method, _) = m.encode(common.clone());
            json!({ "type": method, "data": data(m, &common) })
        })
        .collect();
    i.messages_sent += messages.len() as u64;
    json!({ "messages": messages }).to_string()
}

fn user(u: Option<&User>) -> Value {
    let Some(u) = u else { return Value::Null };
    json!({ "userId": u.user_id.to_string(), "uniqueId": u.unique_id, "nickname": u.nickname })
}

fn data(m: &Msg, common: &Common) -> Value {
    let mut c = json!({
        "method": m.method(),
        "msgId": common.msg_id.to_string(),
        "roomId": common.room_id.to_string(),
        "createTime": common.create_time.to_string(),
    });
    let mut body = match m {
        Msg::Chat(x) => json!({ "user": user(x.user.as_ref()), "comment": x.comment }),
        Msg::Gift(x) => json!({
            "user": user(x.user.as_ref()), "giftId": x.gift_id.to_string(), "repeatCount": x.repeat_count,
            "repeatEnd": x.repeat_end, "groupId": x.group_id.to_string(),
            "giftDetails": x.gift_details.as_ref().map(|g| json!({
                "giftType": g.gift_type, "diamondCount": g.diamond_count, "giftName": g.gift_name,
            })),
        }),
        Msg::Like(x) => json!({
            "user": user(x.user.as_ref()), "likeCount": x.like_count,
            "totalLikeCount": x.total_like_count.to_string(),
        }),
        Msg::Member(x) => {
            json!({ "user": user(x.user.as_ref()), "memberCount": x.member_count, "action": x.action })
        }
        Msg::Social(x) => {
            if let Some(t) = x.common.as_ref().and_then(|c| c.display_text.as_ref()) {
                c["displayText"] = json!({ "key": t.key, "defaultPattern": t.default_pattern });
            }
            json!({ "user": user(x.user.as_ref()), "action": x.action.to_string() })
        }
        Msg::Battle(x) => json!({ "battleId": x.battle_id.to_string(), "action": x.action }),
        Msg::Armies(x) => {
            json!({ "battleId": x.battle_id.to_string(), "triggerReason": x.trigger_reason })
        }
        Msg::Control(x) => json!({ "action": x.action, "tips": x.tips }),
        Msg::ViewerCount(x) => json!({ "total": x.total.to_string() }),
        Msg::Raw { payload, .. } => json!({ "payloadLength": payload.len() }),
    };
    body["common"] = c;
    body
}
