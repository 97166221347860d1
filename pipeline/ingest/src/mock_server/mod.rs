//! A mock TikTok on 127.0.0.1 that speaks the real protocol, so the direct provider is tested
//! end to end without the internet (`ttlc dev mock-tiktok`, or in-process from tests).
//!
//! One listener serves everything a client touches:
//! - the sign server: `GET /webcast/fetch?room_id=…|unique_id=…` and
//!   `GET /webcast/rooms/{room_id}/connect` return a protobuf fetch result (initial messages,
//!   heartbeat interval, a push-server URL pointing back here) with an `x-set-tt-cookie` header;
//!   `x-api-key` is checked when configured; `GET /webcast/room_id?unique_id=…` resolves a room;
//! - TikTok's website for room-id lookups: `GET /@{uniqueId}/live` (page data) and
//!   `GET /api-live/user/room/?uniqueId=…` (the live API);
//! - the push WebSocket `GET /webcast/im/push/v2/` ([`push`]);
//! - an Euler-style relay `GET /euler/ws?uniqueId=…&apiKey=…` sending JSON bundles ([`euler`]);
//! - `GET /mock/stats`: per-room counters as JSON, for people driving the mock by hand.
//!
//! Any room id or `@uniqueId` works: a room is created on first use with the configured scenario,
//! or the one its unique id names (`@gifts--alice`).

mod euler;
mod http;
mod push;
mod rooms;
pub mod script;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

use crate::record::{Recorder, RecorderTask};
use rooms::{Room, Shared};
pub use rooms::{RoomStats, ServerStats};
pub use script::Scenario;

/// Everything about the mock that a test or the CLI may want to change.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Listen address; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Scenario of rooms whose unique id does not name one.
    pub scenario: Scenario,
    /// Rooms created at start (`@mock-0` …), so a load test has ids to point at.
    pub rooms: usize,
    /// Messages per second per connected room once its script is done (0 = none).
    pub rate: u32,
    /// When set, sign requests must carry this `x-api-key`.
    pub api_key: Option<String>,
    /// Heartbeat interval the mock asks clients for.
    pub heartbeat_interval: Duration,
    /// A connection with no heartbeat for this long is closed.
    pub heartbeat_timeout: Duration,
    /// Pause between the push frames of a script.
    pub frame_interval: Duration,
    /// `retry-after` of the sign-429 scenario (whole seconds on the wire).
    pub retry_after: Duration,
    /// How many handshakes the refused-handshake scenario refuses before accepting.
    pub refused_handshakes: u32,
    /// Artificial latency of each sign request, so tests can observe concurrency.
    pub sign_delay: Duration,
    /// Record every binary message the mock sends to this file.
    pub record: Option<PathBuf>,
    /// Put the room id in the LIVE page data (`/@user/live`); off, clients must fall back.
    pub page_data: bool,
    /// Answer TikTok's live API (`/api-live/user/room/`); off, clients must fall back.
    pub live_api: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            scenario: Scenario::All,
            rooms: 0,
            rate: 0,
            api_key: None,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(25),
            frame_interval: Duration::from_millis(50),
            retry_after: Duration::from_secs(1),
            refused_handshakes: 2,
            sign_delay: Duration::ZERO,
            record: None,
            page_data: true,
            live_api: true,
        }
    }
}

/// A running mock server.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    recorder: Option<RecorderTask>,
}

impl MockServer {
    /// Binds and starts serving; stops when `shutdown` is cancelled or [`MockServer::stop`] is
    /// called.
    pub async fn start(config: MockConfig, shutdown: CancellationToken) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (recorder, recorder_task) = match &config.record {
            Some(path) => {
                let (r, t) = Recorder::create(path).await?;
                (Some(r), Some(t))
            }
            None => (None, None),
        };
        let shared = Arc::new(Shared::new(config, addr, recorder));
        for i in 0..shared.config.rooms {
            shared.room_for_unique(&format!("mock-{i}"));
        }
        let shutdown = shutdown.child_token();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), shutdown.clone()));
        Ok(MockServer { addr, shared, shutdown, task, recorder: recorder_task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: use it as both the sign server and TikTok's website.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Counters of one room, by `@uniqueId`, unique id or room id.
    pub fn room(&self, key: &str) -> Option<RoomStats> {
        self.shared.find(key).map(|r| r.stats())
    }

    /// Every room's counters.
    pub fn rooms(&self) -> Vec<RoomStats> {
        self.shared.all_rooms().iter().map(|r| r.stats()).collect()
    }

    /// Server-wide sign counters.
    pub fn stats(&self) -> ServerStats {
        self.shared.server_stats()
    }

    /// Stops serving, closes every push socket and waits for the capture file to be complete.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        // The accept loop owned the last Shared clones besides ours; dropping ours releases the
        // Recorder so the writer task can finish.
        drop(self.shared);
        if let Some(r) = self.recorder {
            if let Err(error) = r.finish().await {
                tracing::warn!(%error, "The mock server could not finish its capture file.");
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(handle(stream, shared.clone(), shutdown.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "The mock server failed to accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Every session selects on the same token, so this ends promptly.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

async fn handle(mut stream: TcpStream, shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(req) = http::read_request(&mut stream, Duration::from_secs(5)).await else { return };
    let path = req.path.trim_end_matches('/');
    let result = if req.method != "GET" {
        http::respond(&mut stream, 400, &[], b"GET only").await
    } else if path == "/webcast/fetch" {
        let room = req
            .param("room_id")
            .map(|id| shared.room_for_id(id))
            .or_else(|| req.param("unique_id").map(|u| Some(shared.room_for_unique(u))))
            .flatten();
        sign(&mut stream, &req, room, &shared).await
    } else if let Some(id) =
        path.strip_prefix("/webcast/rooms/").and_then(|p| p.strip_suffix("/connect"))
    {
        let room = shared.room_for_id(id);
        sign(&mut stream, &req, room, &shared).await
    } else if path == "/webcast/room_id" {
        lookup_json(&mut stream, req.param("unique_id").map(|u| shared.room_for_unique(u))).await
    } else if let Some(unique) = path.strip_prefix("/@").and_then(|p| p.strip_suffix("/live")) {
        if !shared.config.page_data {
            let page = b"<!DOCTYPE html><html><body>LIVE has ended</body></html>";
            return respond_or_log(http::respond(&mut stream, 200, &[], page).await);
        }
        let room = shared.room_for_unique(unique);
        let page = format!(
            "<!DOCTYPE html><html><head><title>{unique} LIVE</title></head><body>\
             <script id=\"SIGI_STATE\" type=\"application/json\">{{\"LiveRoom\":{{\
             \"liveRoomUserInfo\":{{\"user\":{{\"uniqueId\":\"{unique}\",\"roomId\":\"{}\",\
             \"status\":2}}}}}}}}</script></body></html>",
            room.id
        );
        http::respond(&mut stream, 200, &[("content-type", "text/html".into())], page.as_bytes())
            .await
    } else if path == "/api-live/user/room" && !shared.config.live_api {
        http::respond(&mut stream, 404, &[], b"not found").await
    } else if path == "/api-live/user/room" {
        match req.param("uniqueId") {
            Some(u) => {
                let room = shared.room_for_unique(u);
                let body = serde_json::json!({
                    "statusCode": 0,
                    "data": { "user": { "uniqueId": room.unique_id, "roomId": room.id.to_string() },
                              "liveRoom": { "status": 2 } }
                });
                json(&mut stream, 200, &body).await
            }
            None => json(&mut stream, 400, &serde_json::json!({"statusCode": 1})).await,
        }
    } else if path == "/webcast/im/push/v2" {
        push_upgrade(stream, &req, &shared, shutdown).await;
        Ok(())
    } else if path == "/euler/ws" {
        euler_upgrade(stream, &req, &shared, shutdown).await;
        Ok(())
    } else if path == "/mock/stats" {
        let rooms: Vec<_> = shared.all_rooms().iter().map(|r| r.stats()).collect();
        let body = serde_json::json!({
            "signRequests": shared.sign_count.load(Ordering::Relaxed),
            "rooms": rooms.iter().map(RoomStats::to_json).collect::<Vec<_>>(),
        });
        json(&mut stream, 200, &body).await
    } else {
        http::respond(&mut stream, 404, &[], b"not found").await
    };
    respond_or_log(result);
}

fn respond_or_log(result: std::io::Result<()>) {
    if let Err(error) = result {
        tracing::debug!(%error, "The mock server could not answer a request.");
    }
}

async fn json(
    stream: &mut TcpStream,
    status: u16,
    body: &serde_json::Value,
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    http::respond(stream, status, &[("content-type", "application/json".into())], &bytes).await
}

async fn lookup_json(stream: &mut TcpStream, room: Option<Arc<Room>>) -> std::io::Result<()> {
    match room {
        Some(r) => json(stream, 200, &serde_json::json!({ "roomId": r.id.to_string() })).await,
        None => json(stream, 400, &serde_json::json!({ "error": "unique_id required" })).await,
    }
}

/// Both sign endpoints: the fetch result for `room`, its cookie, or 429 in the sign-429 scenario.
async fn sign(
    stream: &mut TcpStream,
    req: &http::Request,
    room: Option<Arc<Room>>,
    shared: &Shared,
) -> std::io::Result<()> {
    if let Some(key) = &shared.config.api_key {
        if req.header("x-api-key") != Some(key.as_str()) {
            return http::respond(stream, 401, &[], b"invalid api key").await;
        }
    }
    let Some(room) = room else {
        return http::respond(stream, 400, &[], b"room_id or unique_id required").await;
    };
    let _in_flight = shared.begin_sign();
    if !shared.config.sign_delay.is_zero() {
        tokio::time::sleep(shared.config.sign_delay).await;
    }
    let user_agent = req.header("user-agent").unwrap_or_default().to_owned();
    match room.sign(shared, &user_agent) {
        rooms::SignOutcome::RateLimited(after) => {
            let secs = after.as_secs().max(1).to_string();
            http::respond(stream, 429, &[("retry-after", secs)], b"rate limited").await
        }
        rooms::SignOutcome::Signed { cookie, result } => {
            let headers = [
                ("content-type", "application/x-protobuf".to_owned()),
                ("x-set-tt-cookie", cookie),
            ];
            http::respond(stream, 200, &headers, &result.encode_to_vec()).await
        }
    }
}

/// The push WebSocket upgrade: refuse (HTTP 200) when the scenario says so, check the cookie
/// and User-Agent the sign request was given, then hand the socket to [`push::serve`].
async fn push_upgrade(
    mut stream: TcpStream,
    req: &http::Request,
    shared: &Arc<Shared>,
    shutdown: CancellationToken,
) {
    let room = req.param("room_id").and_then(|id| shared.room_for_id(id));
    let (Some(room), Some(key)) = (room, req.header("sec-websocket-key")) else {
        let _ =
            http::respond(&mut stream, 400, &[], b"room_id and a websocket upgrade required").await;
        return;
    };
    let user_agent = req.header("user-agent").unwrap_or_default();
    let cookie = req.header("cookie").unwrap_or_default();
    match room.admit(shared, cookie, user_agent) {
        rooms::Admission::Refuse => {
            // What TikTok's edge does when it will not upgrade: a normal page, not 101.
            let _ =
                http::respond(&mut stream, 200, &[("content-type", "text/plain".into())], b"OK")
                    .await;
        }
        rooms::Admission::Forbidden => {
            let _ = http::respond(&mut stream, 403, &[], b"cookie or user agent mismatch").await;
        }
        rooms::Admission::Accept => {
            if http::switch_protocols(&mut stream, key).await.is_err() {
                return;
            }
            let ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
            push::serve(ws, room, shared.clone(), shutdown).await;
        }
    }
}

/// The Euler relay upgrade: any room, the API key checked after the upgrade (Euler closes with
/// 4401 rather than refusing the handshake).
async fn euler_upgrade(
    mut stream: TcpStream,
    req: &http::Request,
    shared: &Arc<Shared>,
    shutdown: CancellationToken,
) {
    let room = match (req.param("uniqueId"), req.param("roomId")) {
        (Some(unique), _) => Some(shared.room_for_unique(unique)),
        (None, Some(id)) => shared.room_for_id(id),
        (None, None) => None,
    };
    let (Some(room), Some(key)) = (room, req.header("sec-websocket-key")) else {
        let _ = http::respond(&mut stream, 400, &[], b"uniqueId and a websocket upgrade required")
            .await;
        return;
    };
    room.inner.lock().note_ws_attempt(shared.started.elapsed());
    let authorized =
        shared.config.api_key.as_deref().is_none_or(|k| req.param("apiKey") == Some(k));
    if http::switch_protocols(&mut stream, key).await.is_err() {
        return;
    }
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    euler::serve(ws, room, shared.clone(), authorized, shutdown).await;
}
