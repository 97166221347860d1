//! `/sessions/{id}/events` (keyset pages in seqNo order, filters) and
//! `POST /sessions/{id}/replay`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{DEFAULT_LIMIT, MAX_LIMIT, Tag, decode_cursor, encode_cursor, event_types, parse_time};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug)]
pub(crate) struct SessionsApi;

/// A page of stored events.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct EventPage {
    /// UnifiedEvent v1 objects.
    pub(crate) items: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct ReplayRequest {
    /// Speed factor: 1 = original timing, 2 = twice as fast, 0 = as fast as allowed (max 1000).
    #[oai(validator(minimum(value = "0"), maximum(value = "1000")))]
    speed: f64,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct ReplayStarted {
    /// The replay's new session id.
    session_id: String,
}

#[derive(ApiResponse)]
enum ReplayResponse {
    /// The replay started; its events arrive under the new session id.
    #[oai(status = 202)]
    Accepted(Json<ReplayStarted>),
}

/// The stream a session belongs to, or 404.
pub(crate) async fn session_stream(state: &AppState, session_id: &str) -> ApiResult<String> {
    let row = state
        .pg
        .query_opt("SELECT stream_id FROM sessions WHERE session_id = $1", &[&session_id])
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no session {session_id:?}")))?;
    Ok(row.try_get(0)?)
}

#[OpenApi(tag = "Tag::History")]
impl SessionsApi {
    /// A session's events in seqNo order.
    #[oai(path = "/sessions/:id/events", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        /// Event types, comma separated (e.g. `CHAT,GIFT`).
        #[oai(name = "type")]
        event_type: Query<Option<String>>,
        /// A userId or uniqueId.
        user: Query<Option<String>>,
        /// Events at or after this time (RFC 3339).
        from: Query<Option<String>>,
        /// Events before this time (RFC 3339).
        to: Query<Option<String>>,
        /// Page size (1–1000, default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// `nextCursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<EventPage>> {
        auth.0.require_role(Role::Viewer)?;
        let types = event_types(event_type.0.as_deref())?;
        let (from, to) =
            (parse_time("from", from.0.as_deref())?, parse_time("to", to.0.as_deref())?);
        let after: Option<(i64, String)> = cursor.0.as_deref().map(decode_cursor).transpose()?;
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let stream = session_stream(&state, &id.0).await?;
        auth.0.require(Role::Viewer, &stream)?;
        let types = (!types.is_empty()).then_some(types);
        let (after_seq, after_id) = after.map_or((None, None), |(s, e)| (Some(s), Some(e)));
        let rows = state
            .pg
            .query(
                "SELECT event_data, coalesce(seq_no, -1), event_id FROM events \
                 WHERE session_id = $1 \
                 AND ($2::text[] IS NULL OR event_type = ANY($2)) \
                 AND ($3::text IS NULL OR user_id = $3 OR unique_id = $3) \
                 AND ($4::timestamptz IS NULL OR \"timestamp\" >= $4) \
                 AND ($5::timestamptz IS NULL OR \"timestamp\" < $5) \
                 AND ($6::bigint IS NULL OR (coalesce(seq_no, -1), event_id) > ($6, $7::text)) \
                 ORDER BY coalesce(seq_no, -1), event_id LIMIT $8",
                &[&id.0, &types, &user.0, &from, &to, &after_seq, &after_id, &i64::from(limit)],
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in &rows {
            items.push(row.try_get::<_, serde_json::Value>(0)?);
            last = Some((row.try_get::<_, i64>(1)?, row.try_get::<_, String>(2)?));
        }
        let next_cursor =
            last.filter(|_| items.len() == limit as usize).map(|key| encode_cursor(&key));
        Ok(Json(EventPage { items, next_cursor }))
    }

    /// Replays a stored session as a new session (`source=replay`).
    #[oai(path = "/sessions/:id/replay", method = "post")]
    async fn replay(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        body: Json<ReplayRequest>,
    ) -> ApiResult<ReplayResponse> {
        auth.0.require_role(Role::Streamer)?;
        if !body.0.speed.is_finite() {
            return Err(ApiError::Invalid("speed must be a finite number".into()));
        }
        let stream = session_stream(&state, &id.0).await?;
        auth.0.require(Role::Streamer, &stream)?;
        let control = state.deps.replay.as_ref().ok_or_else(|| {
            ApiError::NotConfigured("replay is not available in this process".into())
        })?;
        let session_id = control.start(&id.0, &stream, body.0.speed).await?;
        Ok(ReplayResponse::Accepted(Json(ReplayStarted { session_id })))
    }
}
