//! The SQL of the archive-pg stage, in one place.
//!
//! Two write paths share the column list. The fast path COPYs a batch straight into `events` and
//! upserts users, streams and sessions from folds computed in Rust ([`super::fold`]): that is the
//! steady state, where every event is new. When the COPY hits an event that is already stored (a
//! re-delivery after a crash or a rebalance), the transaction is rolled back and the batch goes
//! through the staging path instead: COPY into a temporary table, then one statement that inserts
//! with `ON CONFLICT (event_id) DO NOTHING` and folds exactly the rows it inserted.

use tokio_postgres::types::Type;

/// The columns both paths COPY, in [`COPY_TYPES`] order.
const COLUMNS: &str = "event_id, stream_id, session_id, event_type, trigger_id, user_id, \
    unique_id, raw_type, source, seq_no, \"timestamp\", ingested_at, event_data";

/// Created once per connection. `ON COMMIT DELETE ROWS` empties it at every commit without the
/// catalog churn of creating and dropping a table per batch; temporary tables skip the WAL.
pub(super) const STAGING_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS archive_staging (
    event_id text, stream_id text, session_id text, event_type text, trigger_id smallint,
    user_id text, unique_id text, raw_type text, source text, seq_no bigint,
    \"timestamp\" timestamptz, ingested_at timestamptz, event_data jsonb
) ON COMMIT DELETE ROWS";

pub(super) fn copy_staging_sql() -> String {
    format!("COPY archive_staging ({COLUMNS}) FROM STDIN (FORMAT binary)")
}

pub(super) fn copy_events_sql() -> String {
    format!("COPY events ({COLUMNS}) FROM STDIN (FORMAT binary)")
}

/// Column types of the COPY statements, in order.
pub(super) const COPY_TYPES: [Type; 13] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::JSONB,
];

// Each table's merge rule, written once and spliced into both write paths (`MERGE_SQL` and the
// fast path's `UPSERT_*_SQL`), so the two can never fold a batch differently.
macro_rules! users_merge {
    () => {
        r#"
ON CONFLICT (user_id) DO UPDATE SET
    unique_id = CASE WHEN EXCLUDED.last_seen >= u.last_seen
                     THEN EXCLUDED.unique_id ELSE u.unique_id END,
    display_name = CASE WHEN EXCLUDED.last_seen >= u.last_seen
                        THEN COALESCE(EXCLUDED.display_name, u.display_name)
                        ELSE COALESCE(u.display_name, EXCLUDED.display_name) END,
    avatar_url = CASE WHEN EXCLUDED.last_seen >= u.last_seen
                      THEN COALESCE(EXCLUDED.avatar_url, u.avatar_url)
                      ELSE COALESCE(u.avatar_url, EXCLUDED.avatar_url) END,
    pseudonymized_at = CASE WHEN EXCLUDED.last_seen >= u.last_seen
                            THEN NULL ELSE u.pseudonymized_at END,
    first_seen = LEAST(u.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(u.last_seen, EXCLUDED.last_seen),
    event_count = u.event_count + EXCLUDED.event_count,
    updated_at = now()"#
    };
}
macro_rules! streams_merge {
    () => {
        r#"
ON CONFLICT (stream_id) DO UPDATE SET
    first_seen = LEAST(s.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
    last_session_id = CASE WHEN EXCLUDED.last_seen >= s.last_seen
                           THEN EXCLUDED.last_session_id ELSE s.last_session_id END,
    event_count = s.event_count + EXCLUDED.event_count"#
    };
}
macro_rules! sessions_merge {
    () => {
        r#"
ON CONFLICT (session_id) DO UPDATE SET
    started_at = LEAST(s.started_at, EXCLUDED.started_at),
    ended_at = GREATEST(s.ended_at, EXCLUDED.ended_at),
    end_reason = COALESCE(EXCLUDED.end_reason, s.end_reason),
    first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
    last_event_at = GREATEST(s.last_event_at, EXCLUDED.last_event_at),
    event_count = s.event_count + EXCLUDED.event_count"#
    };
}

/// Insert what is new, then fold exactly those rows into users, streams and sessions. Upserts are
/// sorted by key so concurrent archivers (other partitions) lock shared user rows in one order and
/// do not deadlock. GREATEST/LEAST make the folds order-independent across batches.
pub(super) const MERGE_SQL: &str = concat!(
    r#"
WITH ins AS (
    INSERT INTO events (event_id, stream_id, session_id, event_type, trigger_id, user_id,
                        unique_id, raw_type, source, seq_no, "timestamp", ingested_at, event_data)
    SELECT event_id, stream_id, session_id, event_type, trigger_id, user_id,
           unique_id, raw_type, source, seq_no, "timestamp", ingested_at, event_data
    FROM archive_staging
    ON CONFLICT (event_id) DO NOTHING
    RETURNING stream_id, session_id, event_type, user_id, unique_id, source, "timestamp" AS ts,
              event_data #>> '{user,displayName}' AS display_name,
              event_data #>> '{user,avatarUrl}' AS avatar_url,
              CASE WHEN event_type = 'DISCONNECTED' THEN event_data #>> '{payload,reason}' END
                  AS end_reason
), u AS (
    INSERT INTO users AS u (user_id, unique_id, display_name, avatar_url, first_seen, last_seen,
                            event_count)
    SELECT user_id,
           (array_agg(unique_id ORDER BY ts DESC))[1],
           (array_agg(display_name ORDER BY ts DESC) FILTER (WHERE display_name IS NOT NULL))[1],
           (array_agg(avatar_url ORDER BY ts DESC) FILTER (WHERE avatar_url IS NOT NULL))[1],
           min(ts), max(ts), count(*)
    FROM ins
    WHERE user_id <> '0' AND user_id <> ''
    GROUP BY user_id
    ORDER BY user_id
"#,
    users_merge!(),
    r#"
    RETURNING 1
), st AS (
    INSERT INTO streams AS s (stream_id, first_seen, last_seen, last_session_id, event_count)
    SELECT stream_id, min(ts), max(ts), (array_agg(session_id ORDER BY ts DESC))[1], count(*)
    FROM ins
    GROUP BY stream_id
    ORDER BY stream_id
"#,
    streams_merge!(),
    r#"
    RETURNING 1
), se AS (
    INSERT INTO sessions AS s (session_id, stream_id, source, started_at, ended_at, end_reason,
                               first_event_at, last_event_at, event_count)
    SELECT session_id, min(stream_id), min(source),
           COALESCE(min(ts) FILTER (WHERE event_type = 'CONNECTED'), min(ts)),
           max(ts) FILTER (WHERE event_type = 'DISCONNECTED'),
           (array_agg(end_reason ORDER BY ts DESC) FILTER (WHERE event_type = 'DISCONNECTED'))[1],
           min(ts), max(ts), count(*)
    FROM ins
    GROUP BY session_id
    ORDER BY session_id
"#,
    sessions_merge!(),
    r#"
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM u) AS users
"#
);

/// Fast-path fold of a batch's users (parallel arrays sorted by user_id, see `fold.rs`).
pub(super) const UPSERT_USERS_SQL: &str = concat!(
    r#"
INSERT INTO users AS u (user_id, unique_id, display_name, avatar_url, first_seen, last_seen,
                        event_count)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[], $7::int8[])
"#,
    users_merge!(),
    r#"
"#
);

/// Fast-path fold of a batch's streams.
pub(super) const UPSERT_STREAMS_SQL: &str = concat!(
    r#"
INSERT INTO streams AS s (stream_id, first_seen, last_seen, last_session_id, event_count)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::int8[])
"#,
    streams_merge!(),
    r#"
"#
);

/// Fast-path fold of a batch's sessions.
pub(super) const UPSERT_SESSIONS_SQL: &str = concat!(
    r#"
INSERT INTO sessions AS s (session_id, stream_id, source, started_at, ended_at, end_reason,
                           first_event_at, last_event_at, event_count)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                     $6::text[], $7::timestamptz[], $8::timestamptz[], $9::int8[])
"#,
    sessions_merge!(),
    r#"
"#
);
