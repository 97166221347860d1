//! `/users/{id}`, `/users/{id}/events` and `/users/{id}/notes` (MODERATOR).
//!
//! Users are platform-wide rows, but a moderator's view is confined to their stream: a user who
//! never appeared in it is 404 for them, their events are that stream's only, and notes are the
//! stream's notes. Operators see everything.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::sessions::EventPage;
use super::{
    DEFAULT_LIMIT, MAX_LIMIT, Tag, cursor_time, decode_cursor, encode_cursor, event_types,
    fmt_time, parse_time,
};
use crate::auth::{Auth, Claims, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug)]
pub(crate) struct UsersApi;

/// A TikTok user as archived.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct UserInfo {
    user_id: String,
    unique_id: String,
    display_name: Option<String>,
    avatar_url: Option<String>,
    first_seen: String,
    last_seen: String,
    /// Events archived for this user across all streams.
    event_count: i64,
    /// True once retention replaced the identifying fields with a pseudonym.
    pseudonymized: bool,
}

/// A moderator note.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct Note {
    id: i64,
    user_id: String,
    stream_id: Option<String>,
    author: String,
    note: String,
    created_at: String,
}

#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct NewNote {
    /// The note text (1–4000 characters).
    #[oai(validator(min_length = 1, max_length = 4000))]
    note: String,
    /// Operators only: the stream the note belongs to (others: always their own stream).
    stream_id: Option<String>,
}

#[derive(ApiResponse)]
enum NoteCreated {
    #[oai(status = 201)]
    Created(Json<Note>),
}

/// 404 unless the user exists and, for non-operators, appeared in the caller's stream.
async fn visible_user(state: &AppState, claims: &Claims, user_id: &str) -> ApiResult<()> {
    let found = match claims.scope() {
        None => state.pg.query_opt("SELECT 1 FROM users WHERE user_id = $1", &[&user_id]).await?,
        Some(stream) => {
            state
                .pg
                .query_opt(
                    "SELECT 1 FROM users u WHERE u.user_id = $1 AND EXISTS \
                     (SELECT 1 FROM events e WHERE e.user_id = u.user_id AND e.stream_id = $2)",
                    &[&user_id, &stream],
                )
                .await?
        }
    };
    found.map(|_| ()).ok_or_else(|| ApiError::NotFound(format!("no user {user_id:?}")))
}

fn note_of(row: &tokio_postgres::Row) -> Result<Note, tokio_postgres::Error> {
    Ok(Note {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        stream_id: row.try_get(2)?,
        author: row.try_get(3)?,
        note: row.try_get(4)?,
        created_at: fmt_time(row.try_get(5)?),
    })
}

#[OpenApi(tag = "Tag::Users")]
impl UsersApi {
    /// One user.
    #[oai(path = "/users/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<UserInfo>> {
        auth.0.require_role(Role::Moderator)?;
        visible_user(&state, &auth.0, &id.0).await?;
        let row = state
            .pg
            .query_opt(
                "SELECT user_id, unique_id, display_name, avatar_url, first_seen, last_seen, \
                 event_count, pseudonymized_at IS NOT NULL FROM users WHERE user_id = $1",
                &[&id.0],
            )
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no user {:?}", id.0)))?;
        Ok(Json(UserInfo {
            user_id: row.try_get(0)?,
            unique_id: row.try_get(1)?,
            display_name: row.try_get(2)?,
            avatar_url: row.try_get(3)?,
            first_seen: fmt_time(row.try_get(4)?),
            last_seen: fmt_time(row.try_get(5)?),
            event_count: row.try_get(6)?,
            pseudonymized: row.try_get(7)?,
        }))
    }

    /// A user's events, newest first (non-operators: in their stream only).
    #[oai(path = "/users/:id/events", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        /// Operators: restrict to one stream. Others may only name their own.
        #[oai(name = "streamId")]
        stream_id: Query<Option<String>>,
        /// Event types, comma separated.
        #[oai(name = "type")]
        event_type: Query<Option<String>>,
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
        auth.0.require_role(Role::Moderator)?;
        let stream = match (auth.0.scope(), stream_id.0) {
            (None, requested) => requested,
            (Some(own), Some(requested)) if requested != own => {
                return Err(ApiError::Forbidden("this token is scoped to another stream".into()));
            }
            (Some(own), _) => Some(own.to_owned()),
        };
        let types = event_types(event_type.0.as_deref())?;
        let types = (!types.is_empty()).then_some(types);
        let (from, to) =
            (parse_time("from", from.0.as_deref())?, parse_time("to", to.0.as_deref())?);
        let after: Option<(String, String)> = cursor.0.as_deref().map(decode_cursor).transpose()?;
        let (after_time, after_id) = match after {
            Some((t, e)) => (parse_time("cursor", Some(&t))?, Some(e)),
            None => (None, None),
        };
        let limit = limit.0.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        visible_user(&state, &auth.0, &id.0).await?;
        let rows = state
            .pg
            .query(
                "SELECT event_data, \"timestamp\", event_id FROM events WHERE user_id = $1 \
                 AND ($2::text IS NULL OR stream_id = $2) \
                 AND ($3::text[] IS NULL OR event_type = ANY($3)) \
                 AND ($4::timestamptz IS NULL OR \"timestamp\" >= $4) \
                 AND ($5::timestamptz IS NULL OR \"timestamp\" < $5) \
                 AND ($6::timestamptz IS NULL OR (\"timestamp\", event_id) < ($6, $7::text)) \
                 ORDER BY \"timestamp\" DESC, event_id DESC LIMIT $8",
                &[&id.0, &stream, &types, &from, &to, &after_time, &after_id, &i64::from(limit)],
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in &rows {
            items.push(row.try_get::<_, serde_json::Value>(0)?);
            last = Some((cursor_time(row.try_get(1)?), row.try_get::<_, String>(2)?));
        }
        let next_cursor = last.filter(|_| items.len() == limit as usize).map(|k| encode_cursor(&k));
        Ok(Json(EventPage { items, next_cursor }))
    }

    /// Moderator notes about a user, newest first (non-operators: their stream's notes).
    #[oai(path = "/users/:id/notes", method = "get")]
    async fn notes(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Json<Vec<Note>>> {
        auth.0.require_role(Role::Moderator)?;
        visible_user(&state, &auth.0, &id.0).await?;
        let scope = auth.0.scope().map(str::to_owned);
        let rows = state
            .pg
            .query(
                "SELECT id, user_id, stream_id, author, note, created_at FROM user_notes \
                 WHERE user_id = $1 AND ($2::text IS NULL OR stream_id = $2) \
                 ORDER BY created_at DESC, id DESC LIMIT 1000",
                &[&id.0, &scope],
            )
            .await?;
        Ok(Json(rows.iter().map(note_of).collect::<Result<Vec<_>, _>>()?))
    }

    /// Adds a note about a user, authored by the token's subject.
    #[oai(path = "/users/:id/notes", method = "post")]
    async fn add_note(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        body: Json<NewNote>,
    ) -> ApiResult<NoteCreated> {
        auth.0.require_role(Role::Moderator)?;
        let stream = match (auth.0.scope(), body.0.stream_id) {
            (None, requested) => requested,
            (Some(own), Some(requested)) if requested != own => {
                return Err(ApiError::Forbidden("this token is scoped to another stream".into()));
            }
            (Some(own), _) => Some(own.to_owned()),
        };
        visible_user(&state, &auth.0, &id.0).await?;
        let row = state
            .pg
            .query_opt(
                "INSERT INTO user_notes (user_id, stream_id, author, note) VALUES ($1, $2, $3, $4) \
                 RETURNING id, user_id, stream_id, author, note, created_at",
                &[&id.0, &stream, &auth.0.sub, &body.0.note],
            )
            .await?
            .ok_or_else(|| ApiError::Internal("INSERT … RETURNING returned no row".into()))?;
        Ok(NoteCreated::Created(Json(note_of(&row)?)))
    }
}
