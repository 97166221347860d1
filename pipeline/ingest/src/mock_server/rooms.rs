//! The mock's state: rooms created on first use, what each was told and sent, and the counters
//! tests assert on. Locks are held for bookkeeping only, never across an await.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ttlc_webcast::{Common, Message, ProtoMessageFetchResult};

use super::MockConfig;
use super::script::{self, Msg, Scenario, Step};
use crate::record::Recorder;

/// State shared by every connection of one mock server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) started: Instant,
    pub(crate) recorder: Option<Recorder>,
    rooms: Mutex<Rooms>,
    pub(crate) sign_count: AtomicU64,
    sign_in_flight: AtomicUsize,
    sign_max_in_flight: AtomicUsize,
    sign_times: Mutex<Vec<Duration>>,
}

#[derive(Debug, Default)]
struct Rooms {
    by_id: HashMap<i64, Arc<Room>>,
    by_unique: HashMap<String, i64>,
}

/// Server-wide sign counters.
#[derive(Debug, Clone)]
pub struct ServerStats {
    pub sign_requests: u64,
    /// Most sign requests the mock was serving at the same moment.
    pub max_concurrent_signs: usize,
    /// When each sign request arrived, since the server started, in arrival order.
    pub sign_times: Vec<Duration>,
}

/// Decrements the in-flight sign count when the request is answered.
#[derive(Debug)]
pub(crate) struct SignGuard<'a>(&'a AtomicUsize);

impl Drop for SignGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    pub(crate) fn new(config: MockConfig, addr: SocketAddr, recorder: Option<Recorder>) -> Self {
        Shared {
            config,
            addr,
            started: Instant::now(),
            recorder,
            rooms: Mutex::new(Rooms::default()),
            sign_count: AtomicU64::new(0),
            sign_in_flight: AtomicUsize::new(0),
            sign_max_in_flight: AtomicUsize::new(0),
            sign_times: Mutex::new(Vec::new()),
        }
    }

    /// The room of a `@uniqueId`, created with its scenario on first use.
    pub(crate) fn room_for_unique(&self, unique: &str) -> Arc<Room> {
        let unique = unique.trim_start_matches('@').to_owned();
        let mut rooms = self.rooms.lock();
        if let Some(room) = rooms.by_unique.get(&unique).and_then(|id| rooms.by_id.get(id)) {
            return room.clone();
        }
        let mut id = room_id_of(&unique);
        while rooms.by_id.contains_key(&id) {
            id += 1;
        }
        let scenario = Scenario::from_unique_id(&unique).unwrap_or(self.config.scenario);
        let room = Arc::new(Room::new(id, unique.clone(), scenario));
        rooms.by_unique.insert(unique, id);
        rooms.by_id.insert(id, room.clone());
        room
    }

    /// The room with this numeric id, created on first use; `None` when `id` is not a number.
    pub(crate) fn room_for_id(&self, id: &str) -> Option<Arc<Room>> {
        let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
        let mut rooms = self.rooms.lock();
        let room = rooms
            .by_id
            .entry(id)
            .or_insert_with(|| Arc::new(Room::new(id, format!("room{id}"), self.config.scenario)))
            .clone();
        rooms.by_unique.entry(room.unique_id.clone()).or_insert(id);
        Some(room)
    }

    pub(crate) fn find(&self, key: &str) -> Option<Arc<Room>> {
        let rooms = self.rooms.lock();
        let key = key.trim_start_matches('@');
        let id = key.parse::<i64>().ok().or_else(|| rooms.by_unique.get(key).copied())?;
        rooms.by_id.get(&id).cloned()
    }

    pub(crate) fn all_rooms(&self) -> Vec<Arc<Room>> {
        let mut v: Vec<_> = self.rooms.lock().by_id.values().cloned().collect();
        v.sort_by_key(|r| r.id);
        v
    }

    pub(crate) fn begin_sign(&self) -> SignGuard<'_> {
        self.sign_count.fetch_add(1, Ordering::SeqCst);
        self.sign_times.lock().push(self.started.elapsed());
        let now = self.sign_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.sign_max_in_flight.fetch_max(now, Ordering::SeqCst);
        SignGuard(&self.sign_in_flight)
    }

    pub(crate) fn server_stats(&self) -> ServerStats {
        ServerStats {
            sign_requests: self.sign_count.load(Ordering::SeqCst),
            max_concurrent_signs: self.sign_max_in_flight.load(Ordering::SeqCst),
            sign_times: self.sign_times.lock().clone(),
        }
    }

    pub(crate) fn push_url(&self) -> String {
        format!("ws://{}/webcast/im/push/v2/", self.addr)
    }
}

/// A stable, TikTok-looking room id (19 digits) for a unique id.
fn room_id_of(unique: &str) -> i64 {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in unique.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    7_000_000_000_000_000_000 + (h % 1_000_000_000_000_000) as i64
}

/// One mock LIVE room.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) id: i64,
    pub(crate) unique_id: String,
    pub(crate) scenario: Scenario,
    pub(crate) script: Vec<Step>,
    pub(crate) inner: Mutex<RoomInner>,
}

#[derive(Debug)]
pub(crate) struct RoomInner {
    /// Next script step; kept across reconnects like TikTok's cursor, so nothing is sent twice.
    pub(crate) pos: usize,
    next_msg_id: i64,
    next_log_id: i64,
    /// Heartbeat interval told to the current connection, in milliseconds.
    pub(crate) heartbeat_ms: i64,
    signs: Vec<Duration>,
    ws_attempts: Vec<Duration>,
    pub(crate) connections: u32,
    refused: u32,
    rate_limited: u32,
    pub(crate) acks: u64,
    pub(crate) heartbeats: u64,
    pub(crate) messages_sent: u64,
    pub(crate) heartbeat_timeouts: u32,
    /// Cookie token → the User-Agent it was issued to.
    cookies: HashMap<String, String>,
}

impl RoomInner {
    pub(crate) fn note_ws_attempt(&mut self, at: Duration) {
        self.ws_attempts.push(at);
    }
}

/// What the sign endpoint answers.
#[derive(Debug)]
pub(crate) enum SignOutcome {
    RateLimited(Duration),
    Signed { cookie: String, result: Box<ProtoMessageFetchResult> },
}

/// What the push endpoint does with an upgrade.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Accept,
    Refuse,
    Forbidden,
}

/// Counters of one room, as tests and `/mock/stats` see them.
#[derive(Debug, Clone)]
pub struct RoomStats {
    pub room_id: i64,
    pub unique_id: String,
    pub scenario: Scenario,
    /// Arrival of each sign request, since the server started.
    pub sign_times: Vec<Duration>,
    /// Arrival of each WebSocket upgrade attempt (refused ones included), since the server started.
    pub ws_attempts: Vec<Duration>,
    /// Push sockets that completed enter-room.
    pub connections: u32,
    pub acks: u64,
    pub heartbeats: u64,
    pub heartbeat_timeouts: u32,
    pub messages_sent: u64,
    /// Whether every script step has been sent.
    pub script_done: bool,
}

impl RoomStats {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "roomId": self.room_id.to_string(),
            "uniqueId": self.unique_id,
            "scenario": self.scenario.name(),
            "signRequests": self.sign_times.len(),
            "wsAttempts": self.ws_attempts.len(),
            "connections": self.connections,
            "acks": self.acks,
            "heartbeats": self.heartbeats,
            "heartbeatTimeouts": self.heartbeat_timeouts,
            "messagesSent": self.messages_sent,
            "scriptDone": self.script_done,
        })
    }
}

impl Room {
    fn new(id: i64, unique_id: String, scenario: Scenario) -> Self {
        Room {
            id,
            unique_id,
            scenario,
            script: script::script(scenario),
            inner: Mutex::new(RoomInner {
                pos: 0,
                // TikTok msgIds are large 64-bit numbers; growing ones keep the tests' order
                // checks simple.
                next_msg_id: 7_300_000_000_000_000_000 + (id % 1_000_000) * 1_000_000,
                next_log_id: 1,
                heartbeat_ms: 0,
                signs: Vec::new(),
                ws_attempts: Vec::new(),
                connections: 0,
                refused: 0,
                rate_limited: 0,
                acks: 0,
                heartbeats: 0,
                messages_sent: 0,
                heartbeat_timeouts: 0,
                cookies: HashMap::new(),
            }),
        }
    }

    pub(crate) fn stats(&self) -> RoomStats {
        let i = self.inner.lock();
        RoomStats {
            room_id: self.id,
            unique_id: self.unique_id.clone(),
            scenario: self.scenario,
            sign_times: i.signs.clone(),
            ws_attempts: i.ws_attempts.clone(),
            connections: i.connections,
            acks: i.acks,
            heartbeats: i.heartbeats,
            heartbeat_timeouts: i.heartbeat_timeouts,
            messages_sent: i.messages_sent,
            script_done: i.pos >= self.script.len(),
        }
    }

    pub(crate) fn sign(&self, shared: &Shared, user_agent: &str) -> SignOutcome {
        let mut i = self.inner.lock();
        i.signs.push(shared.started.elapsed());
        if self.scenario == Scenario::Sign429 && i.rate_limited == 0 {
            i.rate_limited += 1;
            return SignOutcome::RateLimited(shared.config.retry_after);
        }
        let configured =
            i64::try_from(shared.config.heartbeat_interval.as_millis()).unwrap_or(10_000);
        // The heartbeat-timeout scenario tells its first connection to heartbeat every minute,
        // far slower than the mock's timeout: that connection is closed for missing heartbeats.
        i.heartbeat_ms = if self.scenario == Scenario::HeartbeatTimeout && i.signs.len() == 1 {
            60_000
        } else {
            configured
        };
        let token = uuid::Uuid::new_v4().simple().to_string();
        i.cookies.insert(token.clone(), user_agent.to_owned());
        let cookie = format!("ttwid=1%7C{token}; tt-target-idc=useast5");
        let initial = vec![script::viewer_count(42)];
        let mut result = self.fetch_result(&mut i, shared, &initial);
        result.need_ack = false;
        result.route_params.insert("room_id".into(), self.id.to_string());
        result.route_params.insert("compress".into(), "gzip".into());
        result.route_params.insert("imprp".into(), token);
        SignOutcome::Signed { cookie, result: Box::new(result) }
    }

    /// Whether a WebSocket upgrade carrying `cookie` and `user_agent` is let in.
    pub(crate) fn admit(&self, shared: &Shared, cookie: &str, user_agent: &str) -> Admission {
        let mut i = self.inner.lock();
        i.ws_attempts.push(shared.started.elapsed());
        if self.scenario == Scenario::RefusedHandshake
            && i.refused < shared.config.refused_handshakes
        {
            i.refused += 1;
            return Admission::Refuse;
        }
        // TikTok binds the signed URL's cookie to the User-Agent that asked for it.
        let issued = cookie
            .split(';')
            .filter_map(|kv| kv.trim().strip_prefix("ttwid=1%7C"))
            .any(|token| i.cookies.get(token).is_some_and(|ua| ua == user_agent));
        if issued { Admission::Accept } else { Admission::Forbidden }
    }

    /// A fetch result carrying `msgs`, each given the next msgId and the current time.
    pub(crate) fn fetch_result(
        &self,
        i: &mut RoomInner,
        shared: &Shared,
        msgs: &[Msg],
    ) -> ProtoMessageFetchResult {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let messages: Vec<Message> = msgs
            .iter()
            .map(|m| {
                let msg_id = Room::take_msg_id(i);
                let common =
                    Common { msg_id, room_id: self.id, create_time: now_ms, ..Default::default() };
                let (method, payload) = m.encode(common);
                Message { method, payload, msg_id, msg_type: 0, offset: 0 }
            })
            .collect();
        i.messages_sent += messages.len() as u64;
        ProtoMessageFetchResult {
            messages,
            cursor: format!("r-{}", i.next_msg_id),
            fetch_interval: 1_000,
            now: now_ms,
            internal_ext: format!(
                "internal_src:dim|wss_push_room_id:{}|wss_push_did:0|fetch_time:{now_ms}|seq:{}",
                self.id, i.next_log_id
            ),
            fetch_type: 1,
            heartbeat_duration: i.heartbeat_ms,
            need_ack: true,
            push_server: shared.push_url(),
            ..Default::default()
        }
    }

    /// The next msgId of this room.
    pub(crate) fn take_msg_id(i: &mut RoomInner) -> i64 {
        i.next_msg_id += 1;
        i.next_msg_id
    }

    /// The next log id for a push frame.
    pub(crate) fn next_log_id(i: &mut RoomInner) -> i64 {
        i.next_log_id += 1;
        i.next_log_id
    }
}
