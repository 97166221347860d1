//! Shared helpers for the executor tests: per-test PostgreSQL databases, an in-process webhook
//! receiver (a real HTTP server on 127.0.0.1), a TCP listener that counts connections (to prove a
//! refused target was never contacted), and ActionRequest builders.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler, http::StatusCode};
use serde_json::{Map, Value, json};
use ttlc_core::InputRecord;
use ttlc_schemas::{ActionRequest, ActionType, encode_action};

pub use ttlc_testkit::pg::PgDb;

/// The secret tests sign webhooks with.
pub const SECRET: &str = "test-webhook-secret-0123456789abcdef";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub action_id: Option<String>,
    pub body: Vec<u8>,
}

/// A webhook receiver answering `status` to every POST on `/hook`.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
}

#[derive(Clone)]
struct State {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
}

#[handler]
async fn hook(req: &Request, body: Vec<u8>, state: Data<&State>) -> StatusCode {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.hits.lock().expect("test helper").push(Hit {
        signature: header("x-ttlc-signature"),
        timestamp: header("x-ttlc-timestamp"),
        action_id: header("x-ttlc-action-id"),
        body,
    });
    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).expect("test helper")
}

impl Receiver {
    pub async fn start(status: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test helper");
        let addr = listener.local_addr().expect("test helper");
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(status));
        let app = Route::new()
            .at("/hook", poem::post(hook))
            .data(State { hits: hits.clone(), status: status.clone() });
        let acceptor = TcpAcceptor::from_tokio(listener).expect("test helper");
        tokio::spawn(async move { poem::Server::new_with_acceptor(acceptor).run(app).await });
        Receiver { addr, hits, status }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("test helper").clone()
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// Verifies a hit's signature the way a receiver would: HMAC-SHA256 over `"<ts>.<body>"`.
pub fn signature_ok(hit: &Hit) -> bool {
    let (Some(sig), Some(ts)) = (&hit.signature, &hit.timestamp) else { return false };
    let expected = format!("sha256={}", ttlc_execute::sign(SECRET.as_bytes(), ts, &hit.body));
    // A real receiver compares in constant time; equality is enough for a test.
    *sig == expected
}

/// A plain TCP listener on 127.0.0.1 that counts accepted connections.
#[derive(Debug, Clone)]
pub struct AcceptCounter {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl AcceptCounter {
    pub async fn start() -> AcceptCounter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("test helper");
        let port = listener.local_addr().expect("test helper").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        AcceptCounter { port, accepted }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// An ActionRequest as the rules stage would make it.
pub fn action(n: usize, action_type: ActionType, params: Value) -> ActionRequest {
    let rule_id = "rule-1".to_owned();
    let event_id = format!("{n:064x}");
    let params: Map<String, Value> = serde_json::from_value(params).expect("test helper");
    ActionRequest {
        action_id: ttlc_rules::action_id(&rule_id, &event_id),
        rule_id,
        event_id,
        stream_id: format!("stream-{}", n % 3),
        session_id: "session-1".into(),
        action_type,
        rendered_template: format!("viewer{n} sent a Lion"),
        params,
        attempt: 1,
        created_at: Utc::now(),
    }
}

pub fn webhook(n: usize, url: &str) -> ActionRequest {
    action(n, ActionType::Webhook, json!({"url": url}))
}

/// The `actions` records for `actions`.
pub fn records(actions: &[ActionRequest]) -> Vec<InputRecord> {
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| InputRecord {
            topic: "t.actions".into(),
            partition: 0,
            offset: i as i64,
            key: Some(a.stream_id.clone().into_bytes()),
            payload: Some(encode_action(a).expect("test helper")),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect()
}

/// `(status, error)` of every actions_log row of `action_id`, oldest first.
pub async fn log_rows(db: &PgDb, action_id: &str) -> Vec<(String, Option<String>)> {
    db.client()
        .await
        .query(
            "SELECT status, error FROM actions_log WHERE action_id = $1 ORDER BY id",
            &[&action_id],
        )
        .await
        .expect("test helper")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}
