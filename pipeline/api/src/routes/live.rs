//! Live feeds: `/streams/{id}/events` (SSE), `/streams/{id}/ws` (WebSocket), `/streams/{id}/overlay`
//! (SSE of overlay actions) and `/taps/{topic}` (SSE of a whole topic, for operators).
//!
//! Each connection holds one slot of its user's connection limit for as long as it is open. The
//! feed ends with an explicit reason (SSE `event: close`, WebSocket close frame) when the client is
//! too slow or the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use poem::IntoResponse;
use poem::web::Data;
use poem::web::websocket::{CloseCode, Message, WebSocket};
use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};

use super::{SseResponse, Tag, WsResponse, event_types, split_list};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::live::feed::{self, FeedItem, Filter, parse_last_event_id};
use crate::live::hub::Hub;
use crate::metrics::LiveGauge;
use crate::state::AppState;

/// A WebSocket send that takes longer than this means the client stopped reading.
const WS_SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct LiveApi;

/// Opens a feed holding one of the user's connection slots.
fn open_feed(
    state: &AppState,
    auth: &Auth,
    hub: &Arc<Hub>,
    filter: Filter,
    last_event_id: Option<&str>,
) -> ApiResult<impl Stream<Item = FeedItem> + Send + 'static> {
    let resume = last_event_id.filter(|id| !id.is_empty()).map(parse_last_event_id).transpose()?;
    let slot = state.connections.acquire(&auth.0.sub).ok_or_else(|| ApiError::RateLimited {
        message: format!(
            "this user already holds {} live connections",
            state.config.http.max_connections_per_user
        ),
        retry_after: state.retry_after(),
    })?;
    feed::open(hub.clone(), filter, resume, state.token.clone(), Some(slot), state.retry_after())
}

fn close_json(reason: &str) -> String {
    serde_json::json!({ "reason": reason }).to_string()
}

/// Most records written to one client in one chunk.
const SSE_BATCH: usize = 256;

/// Appends one SSE event. Record JSON is compact (no newlines), so it is one `data:` line.
fn write_event(out: &mut String, item: &FeedItem) {
    match item {
        FeedItem::Record(r) => {
            out.push_str("id: ");
            out.push_str(&r.id());
            out.push_str("\ndata: ");
            out.push_str(&r.json);
            out.push_str("\n\n");
        }
        FeedItem::Close(reason) => {
            out.push_str("event: close\ndata: ");
            out.push_str(&close_json(reason));
            out.push_str("\n\n");
        }
    }
}

/// Formats a feed as SSE: `id` = partition-offset, `data` = the record's JSON, a `:` comment
/// every `heartbeat`. Records that are ready together go out in one chunk (one write instead of
/// one per record), which is what lets one process feed a thousand clients of a busy stream.
fn sse(feed: impl Stream<Item = FeedItem> + Send + 'static, heartbeat: Duration) -> SseResponse {
    let gauge = LiveGauge::open("sse");
    let records = feed.ready_chunks(SSE_BATCH).map(move |items| {
        let _open = &gauge;
        let mut chunk = String::with_capacity(items.len() * 512);
        for item in &items {
            write_event(&mut chunk, item);
        }
        Some(chunk)
    });
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let heartbeats = futures::stream::unfold(tick, |mut tick| async move {
        tick.tick().await;
        Some((Some(":\n\n".to_owned()), tick))
    });
    // `None` marks the end of the feed; the heartbeat alone must not keep the response open.
    let body =
        futures::stream::select(records.chain(futures::stream::once(async { None })), heartbeats)
            .take_while(|chunk| futures::future::ready(chunk.is_some()))
            .filter_map(|chunk| futures::future::ready(chunk.map(Ok::<_, std::io::Error>)));
    SseResponse(
        poem::Response::builder()
            .content_type("text/event-stream")
            .header("cache-control", "no-cache")
            // Tell nginx-style proxies not to buffer the stream.
            .header("x-accel-buffering", "no")
            .body(poem::Body::from_bytes_stream(body)),
    )
}

/// The filter of a stream's event feed (SSE and WebSocket alike).
fn stream_events(
    stream_id: String,
    event_type: Option<&str>,
    user: Option<String>,
) -> ApiResult<Filter> {
    Ok(Filter { stream_id: Some(stream_id), kinds: event_types(event_type)?, user, rule_id: None })
}

#[OpenApi(tag = "Tag::Live")]
impl LiveApi {
    /// Live events of a stream (SSE). Resume with the `Last-Event-ID` header (or `lastEventId`).
    #[oai(path = "/streams/:id/events", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        /// Event types, comma separated.
        #[oai(name = "type")]
        event_type: Query<Option<String>>,
        /// A userId or uniqueId.
        user: Query<Option<String>>,
        /// The last `id` received: `<partition>-<offset>`.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
        /// Same as the `Last-Event-ID` header, for clients that cannot set headers.
        #[oai(name = "lastEventId")]
        last_event_id_query: Query<Option<String>>,
    ) -> ApiResult<SseResponse> {
        auth.0.require(Role::Moderator, &id.0)?;
        let filter = stream_events(id.0, event_type.0.as_deref(), user.0)?;
        let last = last_event_id.0.or(last_event_id_query.0);
        let feed = open_feed(&state, &auth, &state.unified, filter, last.as_deref())?;
        Ok(sse(feed, state.heartbeat()))
    }

    /// Live events of a stream over WebSocket; each text message is `{id, data}`.
    #[oai(path = "/streams/:id/ws", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn ws(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        /// Event types, comma separated.
        #[oai(name = "type")]
        event_type: Query<Option<String>>,
        /// A userId or uniqueId.
        user: Query<Option<String>>,
        /// Resume after this id (`<partition>-<offset>`).
        #[oai(name = "lastEventId")]
        last_event_id: Query<Option<String>>,
        ws: WebSocket,
    ) -> ApiResult<WsResponse> {
        auth.0.require(Role::Moderator, &id.0)?;
        let filter = stream_events(id.0, event_type.0.as_deref(), user.0)?;
        let feed = open_feed(&state, &auth, &state.unified, filter, last_event_id.0.as_deref())?;
        let heartbeat = state.heartbeat();
        let response = ws.on_upgrade(move |socket| async move {
            let _open = LiveGauge::open("ws");
            let (mut sink, mut incoming) = socket.split();
            let mut feed = std::pin::pin!(feed);
            let mut tick = tokio::time::interval(heartbeat);
            tick.tick().await;
            loop {
                tokio::select! {
                    item = feed.next() => match item {
                        Some(FeedItem::Record(r)) => {
                            let text = format!("{{\"id\":\"{}\",\"data\":{}}}", r.id(), r.json);
                            let sent = tokio::time::timeout(WS_SEND_TIMEOUT, sink.send(Message::Text(text))).await;
                            if !matches!(sent, Ok(Ok(()))) {
                                break;
                            }
                        }
                        Some(FeedItem::Close(reason)) => {
                            let code = if reason.contains("shutting down") { CloseCode::Away } else { CloseCode::Policy };
                            // Close reasons are limited to 123 bytes by the protocol.
                            let mut reason = reason;
                            while reason.len() > 123 {
                                reason.pop();
                            }
                            let close = Message::Close(Some((code, reason)));
                            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
                            break;
                        }
                        None => break,
                    },
                    frame = incoming.next() => match frame {
                        Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    },
                    _ = tick.tick() => {
                        let ping = tokio::time::timeout(WS_SEND_TIMEOUT, sink.send(Message::Ping(Vec::new()))).await;
                        if !matches!(ping, Ok(Ok(()))) {
                            break;
                        }
                    }
                }
            }
        });
        Ok(WsResponse(response.into_response()))
    }

    /// Overlay actions of a stream (SSE), for an OBS browser source. Any token scoped to the
    /// stream works (mint a VIEWER token for the overlay).
    #[oai(path = "/streams/:id/overlay", method = "get")]
    async fn overlay(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        /// The last `id` received: `<partition>-<offset>`.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
    ) -> ApiResult<SseResponse> {
        auth.0.require(Role::Viewer, &id.0)?;
        let filter = Filter {
            stream_id: Some(id.0),
            kinds: vec![ttlc_schemas::ActionType::Overlay.as_str().to_owned()],
            ..Filter::default()
        };
        let feed = open_feed(&state, &auth, &state.actions, filter, last_event_id.0.as_deref())?;
        Ok(sse(feed, state.heartbeat()))
    }

    /// A whole topic as SSE (`unified` or `actions`), decoded to JSON and filtered (OPERATOR).
    /// `Last-Event-ID` resume needs a `streamId` filter (one stream = one partition).
    #[oai(path = "/taps/:topic", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn tap(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// `unified` or `actions`.
        topic: Path<String>,
        #[oai(name = "streamId")] stream_id: Query<Option<String>>,
        /// Event types (unified) or action types (actions), comma separated.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
        /// A userId or uniqueId (unified).
        user: Query<Option<String>>,
        /// A rule id (actions).
        #[oai(name = "ruleId")]
        rule_id: Query<Option<String>>,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
    ) -> ApiResult<SseResponse> {
        auth.0.require_operator()?;
        let (hub, kinds) = match topic.0.as_str() {
            "unified" => (&state.unified, event_types(kind.0.as_deref())?),
            "actions" => {
                let kinds = split_list(kind.0.as_deref());
                if let Some(bad) = kinds.iter().find(|k| {
                    !["announce", "moderate", "webhook", "overlay", "log"].contains(&k.as_str())
                }) {
                    return Err(ApiError::Invalid(format!("unknown action type {bad:?}")));
                }
                (&state.actions, kinds)
            }
            other => {
                return Err(ApiError::NotFound(format!(
                    "no tap for topic {other:?}: use unified or actions"
                )));
            }
        };
        let resume = last_event_id.0.filter(|_| stream_id.0.is_some());
        let filter = Filter { stream_id: stream_id.0, kinds, user: user.0, rule_id: rule_id.0 };
        let feed = open_feed(&state, &auth, hub, filter, resume.as_deref())?;
        Ok(sse(feed, state.heartbeat()))
    }
}
