//! `/streams`, `/streams/{id}` and `/streams/{id}/sessions` from PostgreSQL.
//!
//! Non-operators see only the stream their token is scoped to: the list is filtered, and asking
//! for another stream is 403 (not 404, which would differ for streams that exist).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use tokio_postgres::Row;

use super::{DEFAULT_LIMIT, MAX_LIMIT, Tag, decode_cursor, encode_cursor, fmt_time};
use crate::auth::{Auth, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug)]
pub(crate) struct StreamsApi;

/// A TikTok room as archived.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct StreamInfo {
    stream_id: String,
    /// The streamer's @uniqueId when known.
    unique_id: Option<String>,
    first_seen: String,
    last_seen: String,
    last_session_id: Option<String>,
    event_count: i64,
}

/// One connect/reconnect/replay run.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct SessionInfo {
    session_id: String,
    stream_id: String,
    /// `live` or `replay`.
    source: String,
    /// The session a replay replays.
    replay_of: Option<String>,
    started_at: String,
    ended_at: Option<String>,
    end_reason: Option<String>,
    first_event_at: String,
    last_event_at: String,
    event_count: i64,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct StreamPage {
    items: Vec<StreamInfo>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct SessionPage {
    items: Vec<SessionInfo>,
    next_cursor: Option<String>,
}

const STREAM_COLUMNS: &str =
    "stream_id, unique_id, first_seen, last_seen, last_session_id, event_count";
pub(crate) const SESSION_COLUMNS: &str = "session_id, stream_id, source, replay_of, started_at, \
     ended_at, end_reason, first_event_at, last_event_at, event_count";

fn stream_of(row: &Row) -> Result<StreamInfo, tokio_postgres::Error> {
    Ok(StreamInfo {
        stream_id: row.try_get(0)?,
        unique_id: row.try_get(1)?,
        first_seen: fmt_time(row.try_get(2)?),
        last_seen: fmt_time(row.try_get(3)?),
        last_session_id: row.try_get(4)?,
        event_count: row.try_get(5)?,
    })
}

pub(crate) fn session_of(row: &Row) -> Result<SessionInfo, tokio_postgres::Error> {
    Ok(SessionInfo {
        session_id: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        source: row.try_get(2)?,
        replay_of: row.try_get(3)?,
        started_at: fmt_time(row.try_get(4)?),
        ended_at: row.try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(5)?.map(fmt_time),
        end_reason: row.try_get(6)?,
        first_event_at: fmt_time(row.try_get(7)?),
        last_event_at: fmt_time(row.try_get(8)?),
        event_count: row.try_get(9)?,
    })
}

#[OpenApi(tag = "Tag::History")]
impl StreamsApi {
    /// Streams visible to the caller (operators: all), by stream id.
    #[oai(path = "/streams", method = "get")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        /// Page size (1–1000, default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// `nextCursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<StreamPage>> {
        auth.0.require_role(Role::Viewer)?;
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let after: Option<String> = cursor.0.as_deref().map(decode_cursor).transpose()?;
        let scope = auth.0.scope().map(str::to_owned);
        let sql = format!(
            "SELECT {STREAM_COLUMNS} FROM streams \
             WHERE ($1::text IS NULL OR stream_id = $1) AND ($2::text IS NULL OR stream_id > $2) \
             ORDER BY stream_id LIMIT $3"
        );
        let rows = state.pg.query(&sql, &[&scope, &after, &i64::from(limit)]).await?;
        let items = rows.iter().map(stream_of).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|s| encode_cursor(&s.stream_id)))
            .flatten();
        Ok(Json(StreamPage { items, next_cursor }))
    }

    /// One stream.
    #[oai(path = "/streams/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<StreamInfo>> {
        auth.0.require(Role::Viewer, &id.0)?;
        let sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE stream_id = $1");
        let row = state.pg.query_opt(&sql, &[&id.0]).await?;
        let row = row.ok_or_else(|| ApiError::NotFound(format!("no stream {:?}", id.0)))?;
        Ok(Json(stream_of(&row)?))
    }

    /// A stream's sessions, newest first.
    #[oai(path = "/streams/:id/sessions", method = "get")]
    async fn sessions(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        /// Page size (1–1000, default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// `nextCursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<SessionPage>> {
        auth.0.require(Role::Viewer, &id.0)?;
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let after: Option<(String, String)> = cursor.0.as_deref().map(decode_cursor).transpose()?;
        let exists =
            state.pg.query_opt("SELECT 1 FROM streams WHERE stream_id = $1", &[&id.0]).await?;
        if exists.is_none() {
            return Err(ApiError::NotFound(format!("no stream {:?}", id.0)));
        }
        let (after_time, after_id) = match &after {
            Some((t, s)) => (super::parse_time("cursor", Some(t))?, Some(s.clone())),
            None => (None, None),
        };
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE stream_id = $1 \
             AND ($2::timestamptz IS NULL OR (started_at, session_id) < ($2, $3::text)) \
             ORDER BY started_at DESC, session_id DESC LIMIT $4"
        );
        let rows =
            state.pg.query(&sql, &[&id.0, &after_time, &after_id, &i64::from(limit)]).await?;
        let items = rows.iter().map(session_of).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = match rows.last() {
            // Full precision: the formatted time is rounded to milliseconds.
            Some(row) if items.len() == limit as usize => {
                let started: chrono::DateTime<chrono::Utc> = row.try_get(4)?;
                let id: String = row.try_get(0)?;
                Some(encode_cursor(&(super::cursor_time(started), id)))
            }
            _ => None,
        };
        Ok(Json(SessionPage { items, next_cursor }))
    }
}
