-- Analytics: one wide events table, one row per UnifiedEvent.
--
-- Portability: this DDL must run on the Debian ClickHouse used locally (18.16) and on current
-- releases, so it keeps to their common subset: no DateTime64 (event time is a DateTime plus the
-- exact epoch milliseconds), no LowCardinality, Map, JSON, Bool or UUID types, no TTL clauses, no
-- settings that 18.16 does not know.
--
-- Dedupe: ReplacingMergeTree collapses rows with the same ORDER BY key, and every field of the key
-- is a pure function of the event (event_id determines stream_id and timestamp), so a re-delivered
-- event is the same key. Merges happen eventually: queries that count must read with FINAL (or
-- aggregate with uniqExact(event_id) / argMax), which gives exact counts before any merge.
-- 18.16 has no insert deduplication tokens and non-replicated tables do not dedupe blocks, so the
-- engine is the only mechanism that works on both versions.
CREATE TABLE IF NOT EXISTS events
(
    event_id         String,
    stream_id        String,
    session_id       String,
    event_type       String,
    trigger_id       UInt8,
    timestamp        DateTime,
    timestamp_ms     Int64,
    ingested_at      DateTime,
    archived_at      DateTime,
    source           String,
    seq_no           Nullable(Int64),
    user_id          String,
    unique_id        String,
    display_name     String,
    is_moderator     UInt8,
    is_subscriber    UInt8,
    follow_role      Int8,
    raw_type         String,
    message_length   UInt32,
    gift_id          Int64,
    gift_name        String,
    gift_count       Int64,
    coins            Int64,
    diamonds         Int64,
    is_final_gift    UInt8,
    like_count       Int64,
    total_like_count Int64,
    viewer_count     Int64,
    sub_month        Int64,
    emote_id         String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (stream_id, timestamp, event_id);
