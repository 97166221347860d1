//! The direct provider: one connection to TikTok's webcast push WebSocket.
//!
//! Sign (signed URL + cookies + initial messages) → WebSocket upgrade with the same User-Agent and
//! the cookies → enter-room frame → one `select!` over the next frame, the heartbeat tick, the
//! idle deadline, the gift-streak deadline and the shutdown token. Every message becomes a raw.v1
//! envelope with its original bytes; bytes that cannot be decoded become ERROR (frame level) or
//! still-raw (message level) envelopes and the connection goes on. The supervisor decides what
//! happens after a connection ends.
//!
//! Publishing happens inside the loop (`sink.send` waits when the bounded queue is full), so a
//! slow broker slows the read loop itself: memory stays bounded, and if the broker stalls long
//! enough to miss heartbeats TikTok drops the socket and the supervisor reconnects.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use ttlc_webcast::{Message, WebcastControlMessage};

use crate::envelope::Session;
use crate::error::IngestError;
use crate::publish::{EnvelopeSink, SinkClosed};
use crate::record::Recorder;
use crate::sign::{SignBudget, SignClient};
use crate::streaks::StreakTracker;
use crate::telemetry::{ChannelConnected, ChannelDisconnected, EnvelopesQueued, FrameUndecodable};
use crate::wire;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Timers of a direct connection.
#[derive(Debug, Clone, Copy)]
pub struct DirectSettings {
    /// Heartbeat interval when the server does not negotiate one.
    pub heartbeat: Duration,
    /// No frame for this long means the connection is dead.
    pub idle_timeout: Duration,
    /// Timeout of the WebSocket handshake.
    pub connect_timeout: Duration,
}

/// What every connection of a process shares (direct and euler providers alike).
#[derive(Debug, Clone)]
pub struct DirectContext {
    /// `Direct` or `Euler`: which connection the supervisor runs per channel.
    pub provider: ttlc_schemas::Provider,
    /// The Euler relay's URL (euler provider only).
    pub euler_url: String,
    pub sign: SignClient,
    pub budget: Arc<SignBudget>,
    pub sink: EnvelopeSink,
    pub settings: DirectSettings,
    /// Records every binary message received, when set.
    pub recorder: Option<Recorder>,
}

/// Per-channel numbers a connection keeps current; [`crate::Supervisor::list`] reads them.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    /// True while a push connection is open and joined.
    pub connected: AtomicBool,
    /// Connections that reached CONNECTED.
    pub connects: AtomicU64,
    /// Envelopes queued for publishing, lifecycle ones included.
    pub envelopes: AtomicU64,
}

/// How a connection ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The shutdown token fired (or the sink closed).
    Shutdown,
    /// TikTok said the LIVE ended.
    StreamEnded,
}

/// A connection attempt that failed, or a connection that broke.
#[derive(Debug)]
pub struct Failure {
    pub error: IngestError,
    /// Whether the socket was open and joined: a broken connection resets the backoff.
    pub connected: bool,
    /// WebSocket close code for the DISCONNECTED envelope (1006 when the socket just died).
    pub close_code: u16,
}

impl Failure {
    fn before_connect(error: IngestError) -> Self {
        Failure { error, connected: false, close_code: 1006 }
    }

    fn after_connect(error: IngestError, close_code: u16) -> Self {
        Failure { error, connected: true, close_code }
    }
}

fn sink_closed(_: SinkClosed) -> Result<Outcome, Failure> {
    Ok(Outcome::Shutdown)
}

/// Signs, connects and runs one connection of `channel` (room `room_id`) until it ends, keeping
/// `counters` current.
pub async fn run_connection(
    ctx: &DirectContext,
    channel: &str,
    room_id: &str,
    session: &Session,
    streaks: &mut StreakTracker,
    counters: &ChannelCounters,
    shutdown: &CancellationToken,
) -> Result<Outcome, Failure> {
    let room: i64 = room_id
        .parse()
        .map_err(|_| Failure::before_connect(IngestError::RoomNotFound(room_id.to_owned())))?;
    let unique = channel.starts_with('@').then_some(channel);
    let signed = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Outcome::Shutdown),
        r = ctx.sign.sign(room_id, unique, &ctx.budget) => r.map_err(Failure::before_connect)?,
    };
    let mut request =
        signed.ws_url.as_str().into_client_request().map_err(|e| {
            Failure::before_connect(IngestError::Fatal(format!("bad push URL: {e}")))
        })?;
    let headers = request.headers_mut();
    for (name, value) in [
        ("user-agent", ctx.sign.user_agent()),
        ("cookie", signed.cookies.as_str()),
        ("origin", "https://www.tiktok.com"),
    ] {
        if let (false, Ok(v)) = (value.is_empty(), HeaderValue::from_str(value)) {
            headers.insert(name, v);
        }
    }
    let connect = tokio::time::timeout(
        ctx.settings.connect_timeout,
        tokio_tungstenite::connect_async_with_config(request, None, true),
    );
    let mut ws = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Outcome::Shutdown),
        r = connect => match r {
            Err(_) => return Err(Failure::before_connect(IngestError::WebSocket(
                "handshake timed out".into(),
            ))),
            Ok(r) => r.map_err(|e| Failure::before_connect(e.into()))?.0,
        },
    };
    if let Err(e) = ws.send(WsMessage::Binary(wire::enter_room_frame(room).into())).await {
        return Err(Failure::before_connect(e.into()));
    }
    let mut conn = Connection {
        ctx,
        session,
        streaks,
        counters,
        room_id: room as u64,
        heartbeat: ctx.settings.heartbeat,
    };
    if let Err(e) = conn.emit(session.connected()).await {
        return sink_closed(e);
    }
    counters.connected.store(true, Ordering::Relaxed);
    counters.connects.fetch_add(1, Ordering::Relaxed);
    ChannelConnected { provider: "direct", channel, session_id: session.session_id() }.emit();
    if signed.initial.heartbeat_duration > 0 {
        conn.heartbeat = Duration::from_millis(signed.initial.heartbeat_duration as u64);
    }
    let result = match conn.dispatch(signed.initial.messages).await {
        Err(e) => sink_closed(e),
        Ok(true) => conn.finish(&mut ws, Outcome::StreamEnded).await,
        Ok(false) => conn.run(&mut ws, shutdown).await,
    };
    counters.connected.store(false, Ordering::Relaxed);
    ChannelDisconnected.emit();
    result
}

struct Connection<'a> {
    ctx: &'a DirectContext,
    session: &'a Session,
    streaks: &'a mut StreakTracker,
    counters: &'a ChannelCounters,
    room_id: u64,
    heartbeat: Duration,
}

impl Connection<'_> {
    async fn emit(&self, env: ttlc_schemas::RawEnvelope) -> Result<(), SinkClosed> {
        self.ctx.sink.send(env).await?;
        self.counters.envelopes.fetch_add(1, Ordering::Relaxed);
        EnvelopesQueued { provider: "direct", count: 1 }.emit();
        Ok(())
    }

    /// The one loop of a live connection.
    async fn run(&mut self, ws: &mut Ws, shutdown: &CancellationToken) -> Result<Outcome, Failure> {
        if let Err(e) = ws.send(WsMessage::Binary(wire::heartbeat_frame(self.room_id).into())).await
        {
            return Err(Failure::after_connect(e.into(), 1006));
        }
        let mut hb = interval_at(Instant::now() + self.heartbeat, self.heartbeat);
        hb.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle = self.ctx.settings.idle_timeout;
        let mut idle_deadline = Instant::now() + idle;
        loop {
            // A far-away deadline stands in for "no open streak" so the branch never fires.
            let streak_deadline = self
                .streaks
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return self.finish(ws, Outcome::Shutdown).await,
                frame = ws.next() => {
                    idle_deadline = Instant::now() + idle;
                    match frame {
                        Some(Ok(WsMessage::Binary(bytes))) => {
                            if let Some(rec) = &self.ctx.recorder {
                                rec.record(&bytes).await;
                            }
                            match self.on_binary(ws, &bytes, &mut hb).await {
                                Ok(false) => {}
                                Ok(true) => return self.finish(ws, Outcome::StreamEnded).await,
                                Err(Step::Closed) => return Ok(Outcome::Shutdown),
                                Err(Step::Failed(f)) => return Err(f),
                            }
                        }
                        Some(Ok(WsMessage::Close(frame))) => {
                            let (code, reason) = frame
                                .map(|f| (u16::from(f.code), f.reason.to_string()))
                                .unwrap_or((1005, String::new()));
                            let error = IngestError::WebSocket(format!("server closed the socket ({code} {reason})"));
                            return Err(Failure::after_connect(error, code));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(Failure::after_connect(e.into(), 1006)),
                        None => {
                            let error = IngestError::WebSocket("connection closed".into());
                            return Err(Failure::after_connect(error, 1006));
                        }
                    }
                }
                _ = hb.tick() => {
                    let frame = wire::heartbeat_frame(self.room_id);
                    if let Err(e) = ws.send(WsMessage::Binary(frame.into())).await {
                        return Err(Failure::after_connect(e.into(), 1006));
                    }
                }
                _ = sleep_until(idle_deadline) => {
                    let _ = ws.close(None).await;
                    return Err(Failure::after_connect(IngestError::Idle(idle), 1006));
                }
                _ = sleep_until(streak_deadline) => {
                    for msg in self.streaks.expire(Instant::now()) {
                        if let Err(e) = self.emit(self.session.message(&msg)).await {
                            return sink_closed(e);
                        }
                    }
                }
            }
        }
    }

    /// Handles one binary frame; `Ok(true)` when the stream ended.
    async fn on_binary(
        &mut self,
        ws: &mut Ws,
        bytes: &[u8],
        hb: &mut tokio::time::Interval,
    ) -> Result<bool, Step> {
        let frame = match wire::decode_push_frame(bytes) {
            Ok(f) => f,
            Err(e) => return self.frame_error(&e.to_string()).await.map(|()| false),
        };
        if frame.payload_type != "msg" {
            // "hb" replies and anything new TikTok sends: proof of life, nothing to publish.
            return Ok(false);
        }
        let result = match wire::fetch_result_of(&frame) {
            Ok(r) => r,
            Err(e) => return self.frame_error(&e.to_string()).await.map(|()| false),
        };
        if result.need_ack {
            let ext = frame
                .headers
                .get(wire::INTERNAL_EXT_HEADER)
                .filter(|e| !e.is_empty())
                .unwrap_or(&result.internal_ext);
            let ack = wire::ack_frame(frame.log_id, ext);
            if let Err(e) = ws.send(WsMessage::Binary(ack.into())).await {
                return Err(Step::Failed(Failure::after_connect(e.into(), 1006)));
            }
        }
        if result.heartbeat_duration > 0 {
            let negotiated = Duration::from_millis(result.heartbeat_duration as u64);
            if negotiated != self.heartbeat {
                self.heartbeat = negotiated;
                *hb = interval_at(Instant::now() + negotiated, negotiated);
                hb.set_missed_tick_behavior(MissedTickBehavior::Delay);
            }
        }
        self.dispatch(result.messages).await.map_err(|_| Step::Closed)
    }

    /// An undecodable frame: one ERROR envelope, and the connection goes on.
    async fn frame_error(&self, message: &str) -> Result<(), Step> {
        FrameUndecodable {
            provider: "direct",
            session_id: self.session.session_id(),
            error: message,
        }
        .emit();
        let env = self.session.error(&format!("undecodable push frame: {message}"), "DECODE_ERROR");
        self.emit(env).await.map_err(|_| Step::Closed)
    }

    /// Publishes every message in order; `Ok(true)` when one of them ended the stream.
    async fn dispatch(&mut self, messages: Vec<Message>) -> Result<bool, SinkClosed> {
        let mut ended = false;
        let now = Instant::now();
        for msg in messages {
            if let Some(forced) = self.streaks.observe(&msg, now) {
                self.emit(self.session.message(&forced)).await?;
            }
            self.emit(self.session.message(&msg)).await?;
            ended |= is_stream_end(&msg);
        }
        Ok(ended)
    }

    /// Ends a connection on purpose: closes open streaks, the socket, and says so.
    async fn finish(&mut self, ws: &mut Ws, outcome: Outcome) -> Result<Outcome, Failure> {
        for msg in self.streaks.drain() {
            if self.emit(self.session.message(&msg)).await.is_err() {
                break;
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        let reason = match outcome {
            Outcome::Shutdown => "ingest is shutting down",
            Outcome::StreamEnded => "the LIVE has ended",
        };
        let _ = self.emit(self.session.disconnected(1000, reason, false)).await;
        Ok(outcome)
    }
}

enum Step {
    Closed,
    Failed(Failure),
}

/// A control message with action 3 (ended) or 4 (suspended) ends the LIVE.
fn is_stream_end(msg: &Message) -> bool {
    msg.method == "WebcastControlMessage"
        && WebcastControlMessage::decode(msg.payload.as_slice())
            .is_ok_and(|c| c.action == 3 || c.action == 4)
}
