//! Aggregates from ClickHouse, per stream (VIEWER of the stream) and global (OPERATOR).
//!
//! Every query reads `events FINAL`, which collapses re-delivered copies of an event (same
//! ReplacingMergeTree key) before counting, and counts money and gifts from final gift frames
//! only (`is_final_gift`), so a streak is counted once. User input is bound with `?`, never
//! formatted into SQL; only fixed fragments (the optional stream clause) vary.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::{Tag, fmt_time, parse_time};
use crate::auth::{Auth, Claims, Role};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Debug)]
pub(crate) struct AnalyticsApi;

/// Most rows a per-minute or bucketed series may return.
const MAX_ROWS: i64 = 100_000;

/// Totals over a time range.
#[derive(Debug, Clone, Object, clickhouse::Row, Deserialize)]
#[oai(rename_all = "camelCase")]
struct Summary {
    /// Events of every type.
    events: u64,
    /// Streams with events (1 or 0 per stream; the number of active streams globally).
    streams: u64,
    chats: u64,
    /// Sum of LIKE events' likeCount.
    likes: i64,
    follows: u64,
    shares: u64,
    joins: u64,
    subscribes: u64,
    /// Gifts counted on final frames (sum of giftCount).
    gifts: i64,
    /// Coins of final gift frames.
    coins: i64,
    /// Distinct users (the lifecycle pseudo-user excluded).
    unique_users: u64,
    /// Highest viewer count reported.
    peak_viewers: i64,
}

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct MinuteRow {
    bucket: u32,
    event_type: String,
    events: u64,
}

/// Events of one type in one minute.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct MinuteCount {
    /// Start of the minute (RFC 3339).
    minute: String,
    event_type: String,
    events: u64,
}

/// A user ranked by coins or messages.
#[derive(Debug, Clone, Object, clickhouse::Row, Deserialize)]
#[oai(rename_all = "camelCase")]
struct RankedUser {
    user_id: String,
    unique_id: String,
    display_name: String,
    /// Coins of final gift frames (top gifters) or 0.
    coins: i64,
    /// Gifts (top gifters) or chat messages (top chatters).
    count: i64,
}

#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct CoinsRow {
    bucket: u32,
    coins: i64,
    gifts: i64,
}

/// Coins in one time bucket.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
struct CoinsPoint {
    /// Start of the bucket (RFC 3339).
    at: String,
    coins: i64,
    gifts: i64,
}

/// A validated time range, as epoch seconds for ClickHouse's `toDateTime(?)` (no time zone
/// ambiguity, whatever the server's zone).
#[derive(Debug, Clone, Copy)]
struct Range {
    from: u32,
    to: u32,
}

fn range(from: Option<&str>, to: Option<&str>) -> ApiResult<Range> {
    let to = parse_time("to", to)?.unwrap_or_else(Utc::now);
    let from = parse_time("from", from)?.unwrap_or(to - Duration::hours(24));
    if from >= to {
        return Err(ApiError::Invalid("from must be before to".into()));
    }
    let secs = |t: DateTime<Utc>, name: &str| {
        u32::try_from(t.timestamp())
            .map_err(|_| ApiError::Invalid(format!("{name} is outside 1970–2106")))
    };
    Ok(Range { from: secs(from, "from")?, to: secs(to, "to")? })
}

/// The WHERE clause and its binds, in order.
fn filtered(
    state: &AppState,
    select: &str,
    stream: Option<&str>,
    range: Range,
    extra: &str,
) -> ApiResult<clickhouse::query::Query> {
    let stream_clause = if stream.is_some() { " AND stream_id = ?" } else { "" };
    let sql = format!(
        "{select} FROM events FINAL WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?)\
         {stream_clause}{extra}"
    );
    Ok(bind_range(state.ch.query(&sql)?, range, stream))
}

fn bind_range(
    query: clickhouse::query::Query,
    range: Range,
    stream: Option<&str>,
) -> clickhouse::query::Query {
    let query = query.bind(range.from).bind(range.to);
    match stream {
        Some(s) => query.bind(s),
        None => query,
    }
}

fn epoch(secs: u32) -> String {
    DateTime::from_timestamp(i64::from(secs), 0).map(fmt_time).unwrap_or_default()
}

/// Checks access: a stream's viewer for `Some(stream)`, an operator for global.
fn allow(claims: &Claims, stream: Option<&str>) -> ApiResult<()> {
    match stream {
        Some(s) => claims.require(Role::Viewer, s),
        None => claims.require_operator(),
    }
}

async fn summary(state: &AppState, stream: Option<&str>, range: Range) -> ApiResult<Summary> {
    let select = "SELECT toUInt64(count()) AS events, toUInt64(uniqExact(stream_id)) AS streams, \
        toUInt64(countIf(event_type = 'CHAT')) AS chats, \
        toInt64(sumIf(like_count, event_type = 'LIKE')) AS likes, \
        toUInt64(countIf(event_type = 'FOLLOW')) AS follows, \
        toUInt64(countIf(event_type = 'SHARE')) AS shares, \
        toUInt64(countIf(event_type = 'JOIN')) AS joins, \
        toUInt64(countIf(event_type = 'SUBSCRIBE')) AS subscribes, \
        toInt64(sumIf(gift_count, event_type = 'GIFT' AND is_final_gift = 1)) AS gifts, \
        toInt64(sumIf(coins, event_type = 'GIFT' AND is_final_gift = 1)) AS coins, \
        toUInt64(uniqExactIf(user_id, user_id != '0')) AS unique_users, \
        toInt64(max(viewer_count)) AS peak_viewers";
    let query = filtered(state, select, stream, range, "")?;
    let rows: Vec<Summary> = state.ch.fetch_all(query).await?;
    rows.into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("the summary query returned no row".into()))
}

async fn per_minute(
    state: &AppState,
    stream: Option<&str>,
    range: Range,
) -> ApiResult<Vec<MinuteCount>> {
    let select = "SELECT toUInt32(toUnixTimestamp(toStartOfMinute(timestamp))) AS bucket, \
        event_type, toUInt64(count()) AS events";
    let extra =
        format!(" GROUP BY bucket, event_type ORDER BY bucket, event_type LIMIT {MAX_ROWS}");
    let rows: Vec<MinuteRow> =
        state.ch.fetch_all(filtered(state, select, stream, range, &extra)?).await?;
    Ok(rows
        .into_iter()
        .map(|r| MinuteCount {
            minute: epoch(r.bucket),
            event_type: r.event_type,
            events: r.events,
        })
        .collect())
}

async fn top_users(
    state: &AppState,
    stream: Option<&str>,
    range: Range,
    gifters: bool,
    limit: u32,
) -> ApiResult<Vec<RankedUser>> {
    let (select, kind) = if gifters {
        (
            "SELECT user_id, argMax(unique_id, timestamp_ms) AS unique_id, \
             argMax(display_name, timestamp_ms) AS display_name, toInt64(sum(coins)) AS coins, \
             toInt64(sum(gift_count)) AS count",
            " AND event_type = 'GIFT' AND is_final_gift = 1",
        )
    } else {
        (
            "SELECT user_id, argMax(unique_id, timestamp_ms) AS unique_id, \
             argMax(display_name, timestamp_ms) AS display_name, toInt64(0) AS coins, \
             toInt64(count()) AS count",
            " AND event_type = 'CHAT'",
        )
    };
    let order = if gifters { "coins DESC, count DESC" } else { "count DESC" };
    let extra = format!("{kind} GROUP BY user_id ORDER BY {order}, user_id LIMIT ?");
    let query = filtered(state, select, stream, range, &extra)?.bind(limit);
    state.ch.fetch_all(query).await
}

async fn coins(
    state: &AppState,
    stream: Option<&str>,
    range: Range,
    bucket: u32,
) -> ApiResult<Vec<CoinsPoint>> {
    if i64::from(range.to - range.from) / i64::from(bucket) > MAX_ROWS {
        return Err(ApiError::Invalid(format!(
            "more than {MAX_ROWS} buckets: widen bucketSeconds"
        )));
    }
    let stream_clause = if stream.is_some() { " AND stream_id = ?" } else { "" };
    let sql = format!(
        "SELECT toUInt32(intDiv(toUnixTimestamp(timestamp), ?) * ?) AS bucket, \
         toInt64(sum(coins)) AS coins, toInt64(sum(gift_count)) AS gifts FROM events FINAL \
         WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?){stream_clause} \
         AND event_type = 'GIFT' AND is_final_gift = 1 GROUP BY bucket ORDER BY bucket"
    );
    let query = bind_range(state.ch.query(&sql)?.bind(bucket).bind(bucket), range, stream);
    let rows: Vec<CoinsRow> = state.ch.fetch_all(query).await?;
    Ok(rows
        .into_iter()
        .map(|r| CoinsPoint { at: epoch(r.bucket), coins: r.coins, gifts: r.gifts })
        .collect())
}

#[OpenApi(tag = "Tag::Analytics")]
impl AnalyticsApi {
    /// Totals of a stream over a time range (default: the last 24 hours).
    #[oai(path = "/analytics/streams/:id/summary", method = "get")]
    async fn stream_summary(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> ApiResult<Json<Summary>> {
        allow(&auth.0, Some(id.0.as_str()))?;
        Ok(Json(
            summary(&state, Some(id.0.as_str()), range(from.0.as_deref(), to.0.as_deref())?)
                .await?,
        ))
    }

    /// Events per minute by type for a stream.
    #[oai(path = "/analytics/streams/:id/events-per-minute", method = "get")]
    async fn stream_per_minute(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> ApiResult<Json<Vec<MinuteCount>>> {
        allow(&auth.0, Some(id.0.as_str()))?;
        Ok(Json(
            per_minute(&state, Some(id.0.as_str()), range(from.0.as_deref(), to.0.as_deref())?)
                .await?,
        ))
    }

    /// Top gifters of a stream by coins (final gift frames only).
    #[oai(path = "/analytics/streams/:id/top-gifters", method = "get")]
    async fn stream_top_gifters(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<RankedUser>>> {
        allow(&auth.0, Some(id.0.as_str()))?;
        let range = range(from.0.as_deref(), to.0.as_deref())?;
        Ok(Json(top_users(&state, Some(id.0.as_str()), range, true, limit.0.unwrap_or(10)).await?))
    }

    /// Top chatters of a stream by messages.
    #[oai(path = "/analytics/streams/:id/top-chatters", method = "get")]
    async fn stream_top_chatters(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<RankedUser>>> {
        allow(&auth.0, Some(id.0.as_str()))?;
        let range = range(from.0.as_deref(), to.0.as_deref())?;
        Ok(Json(top_users(&state, Some(id.0.as_str()), range, false, limit.0.unwrap_or(10)).await?))
    }

    /// Coins over time for a stream, in buckets of `bucketSeconds` (default 60).
    #[oai(path = "/analytics/streams/:id/coins", method = "get")]
    async fn stream_coins(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        id: Path<String>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        #[oai(name = "bucketSeconds", validator(minimum(value = "1"), maximum(value = "86400")))]
        bucket: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<CoinsPoint>>> {
        allow(&auth.0, Some(id.0.as_str()))?;
        let range = range(from.0.as_deref(), to.0.as_deref())?;
        Ok(Json(coins(&state, Some(id.0.as_str()), range, bucket.0.unwrap_or(60)).await?))
    }

    /// Totals across every stream (OPERATOR).
    #[oai(path = "/analytics/global/summary", method = "get")]
    async fn global_summary(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> ApiResult<Json<Summary>> {
        allow(&auth.0, None)?;
        Ok(Json(summary(&state, None, range(from.0.as_deref(), to.0.as_deref())?).await?))
    }

    /// Events per minute by type across every stream (OPERATOR).
    #[oai(path = "/analytics/global/events-per-minute", method = "get")]
    async fn global_per_minute(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
    ) -> ApiResult<Json<Vec<MinuteCount>>> {
        allow(&auth.0, None)?;
        Ok(Json(per_minute(&state, None, range(from.0.as_deref(), to.0.as_deref())?).await?))
    }

    /// Top gifters across every stream (OPERATOR).
    #[oai(path = "/analytics/global/top-gifters", method = "get")]
    async fn global_top_gifters(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<RankedUser>>> {
        allow(&auth.0, None)?;
        let range = range(from.0.as_deref(), to.0.as_deref())?;
        Ok(Json(top_users(&state, None, range, true, limit.0.unwrap_or(10)).await?))
    }

    /// Top chatters across every stream (OPERATOR).
    #[oai(path = "/analytics/global/top-chatters", method = "get")]
    async fn global_top_chatters(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<RankedUser>>> {
        allow(&auth.0, None)?;
        let range = range(from.0.as_deref(), to.0.as_deref())?;
        Ok(Json(top_users(&state, None, range, false, limit.0.unwrap_or(10)).await?))
    }

    /// Coins over time across every stream (OPERATOR).
    #[oai(path = "/analytics/global/coins", method = "get")]
    async fn global_coins(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        #[oai(name = "bucketSeconds", validator(minimum(value = "1"), maximum(value = "86400")))]
        bucket: Query<Option<u32>>,
    ) -> ApiResult<Json<Vec<CoinsPoint>>> {
        allow(&auth.0, None)?;
        let range = range(from.0.as_deref(), to.0.as_deref())?;
        Ok(Json(coins(&state, None, range, bucket.0.unwrap_or(60)).await?))
    }
}
