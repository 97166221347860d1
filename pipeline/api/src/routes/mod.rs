//! Routes by resource, plus the small pieces they share: cursors, time parameters and the
//! response wrappers for streams (SSE, WebSocket) that poem-openapi documents like any other.

mod analytics;
mod channels;
mod health;
mod live;
mod rules;
mod sessions;
mod streams;
mod users;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use poem::Response;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::{ApiResponse, Tags};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Every documented API, combined into one OpenAPI service.
pub(crate) type Apis = (
    health::HealthApi,
    streams::StreamsApi,
    sessions::SessionsApi,
    users::UsersApi,
    analytics::AnalyticsApi,
    live::LiveApi,
    channels::ChannelsApi,
    rules::RulesApi,
);

pub(crate) fn apis() -> Apis {
    (
        health::HealthApi,
        streams::StreamsApi,
        sessions::SessionsApi,
        users::UsersApi,
        analytics::AnalyticsApi,
        live::LiveApi,
        channels::ChannelsApi,
        rules::RulesApi,
    )
}

pub(crate) const DESCRIPTION: &str = "History, analytics and live feeds of TikTok LIVE events.\n\n\
Authentication: a JWT with claims `sub`, `role` (STREAMER, MODERATOR, VIEWER or OPERATOR), \
`streamId` and `exp`, sent as `Authorization: Bearer <token>`, or as the `access_token` query \
parameter or cookie (for EventSource and WebSocket clients, which cannot set headers). Roles nest \
within their stream (STREAMER ⊇ MODERATOR ⊇ VIEWER); OPERATOR covers every stream and the \
platform-wide endpoints.\n\nErrors are JSON `{error, message}`. 429 and 503 carry `Retry-After`.";

#[derive(Tags)]
pub(crate) enum Tag {
    /// Liveness, dependencies and metrics.
    Operations,
    /// Streams, sessions and stored events (PostgreSQL).
    History,
    /// TikTok users, their events and moderator notes.
    Users,
    /// Aggregates (ClickHouse).
    Analytics,
    /// Live SSE and WebSocket feeds.
    Live,
    /// Ingest channels and replays.
    Control,
    /// Rules that turn events into actions.
    Rules,
}

/// Default and largest page sizes.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
pub(crate) const MAX_LIMIT: u32 = 1000;

/// Encodes a keyset cursor: opaque to clients, a JSON value inside.
pub(crate) fn encode_cursor<T: Serialize>(key: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is 422.
pub(crate) fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::Invalid("invalid cursor".into()))
}

/// Parses an RFC 3339 time parameter.
pub(crate) fn parse_time(
    name: &str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                ApiError::Invalid(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-20T18:00:00Z: {e}"
                ))
            })
        })
        .transpose()
}

pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time inside a cursor, at the database's full precision.
pub(crate) fn cursor_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Splits a comma-separated list parameter, dropping empty items.
pub(crate) fn split_list(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Validates a list of event types (`CHAT,GIFT`).
pub(crate) fn event_types(value: Option<&str>) -> Result<Vec<String>, ApiError> {
    let types = split_list(value);
    for t in &types {
        if ttlc_schemas::EventType::parse(t).is_none() {
            return Err(ApiError::Invalid(format!("unknown event type {t:?}")));
        }
    }
    Ok(types)
}

/// A `text/event-stream` response, documented as such.
pub(crate) struct SseResponse(pub(crate) Response);

impl poem::IntoResponse for SseResponse {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for SseResponse {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "An event stream: `data` is the record as JSON, `id` is \
                              `<partition>-<offset>` (send it back as Last-Event-ID to resume); \
                              the server ends the stream with an `event: close` naming the reason",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "text/event-stream",
                    schema: MetaSchemaRef::Inline(Box::new(
                        poem_openapi::registry::MetaSchema::new("string"),
                    )),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

/// A WebSocket upgrade response.
pub(crate) struct WsResponse(pub(crate) Response);

impl poem::IntoResponse for WsResponse {
    fn into_response(self) -> Response {
        self.0
    }
}

impl ApiResponse for WsResponse {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Switching to the WebSocket protocol: each text message is one record \
                              as JSON `{id, data}`; the server closes with code 1008 and a reason \
                              when the client is too slow, 1001 on shutdown",
                status: Some(101),
                status_range: None,
                content: vec![],
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}
