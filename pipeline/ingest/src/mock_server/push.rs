//! The mock's push WebSocket, behaving the way TikTok's does: it waits for the enter-room frame,
//! sends the room's script as gzip-compressed "msg" frames that request acks, answers every
//! heartbeat with one of its own, closes the socket when heartbeats stop, and ignores WebSocket
//! pings (they do not count as heartbeats, so a client that only pings is dropped).
//!
//! Note: tungstenite itself queues a pong for every ping it reads; the mock cannot suppress that,
//! but it never treats a ping as a sign of life.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use ttlc_webcast::{WebcastImEnterRoomMessage, WebcastPushFrame};

use super::rooms::{Room, Shared};
use super::script::{self, Msg, Step};
use crate::wire;

type Ws = WebSocketStream<TcpStream>;

/// Serves one push connection until the client leaves, heartbeats stop, the stream ends or the
/// server shuts down.
pub(crate) async fn serve(
    mut ws: Ws,
    room: Arc<Room>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    if !await_enter_room(&mut ws, room.id).await {
        close(&mut ws, CloseCode::Policy, "enter room first").await;
        return;
    }
    room.inner.lock().connections += 1;
    let timeout = shared.config.heartbeat_timeout;
    let mut hb_deadline = Instant::now() + timeout;
    let mut script_tick = interval(shared.config.frame_interval);
    script_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Load pacing: how many rate messages are due is computed from elapsed time, so ticks that
    // fire late simply carry more messages.
    let rate = shared.config.rate;
    let mut load_tick = interval(Duration::from_millis(10));
    load_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut load_started: Option<Instant> = None;
    let mut load_sent: u64 = 0;
    loop {
        let script_done = room.inner.lock().pos >= room.script.len();
        tokio::select! {
            _ = shutdown.cancelled() => {
                close(&mut ws, CloseCode::Away, "server shutting down").await;
                return;
            }
            _ = sleep_until(hb_deadline) => {
                room.inner.lock().heartbeat_timeouts += 1;
                close(&mut ws, CloseCode::Normal, "heartbeat timeout").await;
                return;
            }
            incoming = ws.next() => match incoming {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    let Ok(frame) = wire::decode_push_frame(&bytes) else { continue };
                    match frame.payload_type.as_str() {
                        "hb" => {
                            room.inner.lock().heartbeats += 1;
                            hb_deadline = Instant::now() + timeout;
                            let reply = WebcastPushFrame {
                                payload_type: "hb".into(),
                                payload_encoding: "pb".into(),
                                payload: frame.payload,
                                ..Default::default()
                            };
                            if send(&mut ws, &shared, reply.encode_to_vec()).await.is_err() {
                                return;
                            }
                        }
                        "ack" => room.inner.lock().acks += 1,
                        _ => {}
                    }
                }
                // Pings, pongs and text are not heartbeats.
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = script_tick.tick(), if !script_done => {
                let step = {
                    let mut i = room.inner.lock();
                    let step = room.script.get(i.pos).cloned();
                    i.pos += 1;
                    step
                };
                let Some(step) = step else { continue };
                let ended = matches!(step, Step::EndStream);
                if send(&mut ws, &shared, step_bytes(&room, &shared, step)).await.is_err() {
                    return;
                }
                if ended {
                    close(&mut ws, CloseCode::Normal, "stream ended").await;
                    return;
                }
            }
            _ = load_tick.tick(), if script_done && rate > 0 => {
                let started = *load_started.get_or_insert_with(Instant::now);
                let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
                let n = due.saturating_sub(load_sent).min(1_000);
                if n == 0 {
                    continue;
                }
                let msgs: Vec<Msg> = (load_sent..load_sent + n).map(load_message).collect();
                load_sent += n;
                if send(&mut ws, &shared, batch_frame(&room, &shared, &msgs)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits (briefly) for the client's enter-room frame for `room_id`.
async fn await_enter_room(ws: &mut Ws, room_id: i64) -> bool {
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    let Ok(Some(Ok(WsMessage::Binary(bytes)))) = first else { return false };
    let Ok(frame) = wire::decode_push_frame(&bytes) else { return false };
    frame.payload_type == "im_enter_room"
        && WebcastImEnterRoomMessage::decode(frame.payload.as_slice())
            .is_ok_and(|m| m.room_id == room_id)
}

fn load_message(n: u64) -> Msg {
    let user = 9_000 + (n % 500) as i64;
    if n % 4 == 3 {
        script::like(user, "LoadViewer", 3, n as i64)
    } else {
        script::chat(user, "LoadViewer", &format!("load message {n}"))
    }
}

fn batch_frame(room: &Room, shared: &Shared, msgs: &[Msg]) -> Vec<u8> {
    let mut i = room.inner.lock();
    let result = room.fetch_result(&mut i, shared, msgs);
    let log_id = Room::next_log_id(&mut i);
    wire::message_frame(log_id, &result)
}

fn step_bytes(room: &Room, shared: &Shared, step: Step) -> Vec<u8> {
    match step {
        Step::Batch(msgs) => batch_frame(room, shared, &msgs),
        Step::EndStream => batch_frame(room, shared, &[script::stream_end()]),
        Step::GarbageFrame(bytes) => bytes,
        Step::CorruptGzip => {
            let mut headers = std::collections::HashMap::new();
            headers.insert(wire::COMPRESS_HEADER.to_owned(), "gzip".to_owned());
            WebcastPushFrame {
                log_id: Room::next_log_id(&mut room.inner.lock()),
                headers,
                payload_encoding: "pb".into(),
                payload_type: "msg".into(),
                payload: vec![0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef],
                ..Default::default()
            }
            .encode_to_vec()
        }
    }
}

async fn send(ws: &mut Ws, shared: &Shared, bytes: Vec<u8>) -> Result<(), ()> {
    if let Some(rec) = &shared.recorder {
        rec.record(&bytes).await;
    }
    ws.send(WsMessage::Binary(bytes.into())).await.map_err(|_| ())
}

async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let frame = CloseFrame { code, reason: reason.to_owned().into() };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}
