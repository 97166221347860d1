-- The system of record. Every statement is idempotent (IF NOT EXISTS) so a half-applied migration
-- can be re-run; the migrator also runs each file in one transaction under an advisory lock.

-- events: append-only. The full UnifiedEvent lives in event_data; the other columns are copies of
-- its fields so history queries never have to look inside the JSON. No foreign keys on purpose:
-- the archiver's bulk path must stay cheap, and retention deletes events independently.
CREATE TABLE IF NOT EXISTS events (
    event_id     text        PRIMARY KEY,
    stream_id    text        NOT NULL,
    session_id   text        NOT NULL,
    event_type   text        NOT NULL,
    trigger_id   smallint    NOT NULL CHECK (trigger_id BETWEEN 1 AND 13),
    user_id      text        NOT NULL,
    unique_id    text        NOT NULL,
    -- payload.rawType of RAW events (the TikTok message method nothing else maps); NULL otherwise.
    raw_type     text,
    source       text        NOT NULL CHECK (source IN ('live', 'replay')),
    seq_no       bigint,
    "timestamp"  timestamptz NOT NULL,
    ingested_at  timestamptz,
    -- When the archiver stored the row (not the event time): retention and lag measurements.
    archived_at  timestamptz NOT NULL DEFAULT now(),
    event_data   jsonb       NOT NULL
);
-- A session's events in seqNo order (history paging, replay).
CREATE INDEX IF NOT EXISTS events_session_seq ON events (session_id, seq_no);
-- A stream's events over time.
CREATE INDEX IF NOT EXISTS events_stream_time ON events (stream_id, "timestamp");
-- A stream's events of one type over time (global per-type analytics are ClickHouse's job).
CREATE INDEX IF NOT EXISTS events_stream_type_time ON events (stream_id, event_type, "timestamp");
-- A user's events over time (moderation view, GDPR erasure).
CREATE INDEX IF NOT EXISTS events_user_time ON events (user_id, "timestamp");
-- Retention deletes by age: a BRIN index costs almost nothing on insert for time-ordered data.
CREATE INDEX IF NOT EXISTS events_time_brin ON events USING brin ("timestamp");

-- users: one row per TikTok user, upserted by the archiver. event_count counts archived events
-- (each event once, however often it is delivered); last_seen is the newest event time.
-- The lifecycle pseudo-user (userId "0", uniqueId "system") is not a user and is not stored.
CREATE TABLE IF NOT EXISTS users (
    user_id          text        PRIMARY KEY,
    unique_id        text        NOT NULL,
    display_name     text,
    avatar_url       text,
    first_seen       timestamptz NOT NULL,
    last_seen        timestamptz NOT NULL,
    event_count      bigint      NOT NULL DEFAULT 0,
    -- Set by retention when an inactive user's identifying fields were replaced by an HMAC.
    pseudonymized_at timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS users_unique_id ON users (unique_id);
CREATE INDEX IF NOT EXISTS users_last_seen ON users (last_seen);

-- streams: one row per TikTok room (streamId), upserted by the archiver.
CREATE TABLE IF NOT EXISTS streams (
    stream_id       text        PRIMARY KEY,
    -- The streamer's @uniqueId when known (set by ingest or the API; the events do not carry it).
    unique_id       text,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    last_session_id text,
    event_count     bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS streams_unique_id ON streams (unique_id);

-- sessions: one row per connect/reconnect/replay run. started_at is the CONNECTED event's time
-- (or the earliest event's when CONNECTED was never seen); ended_at is set by DISCONNECTED.
CREATE TABLE IF NOT EXISTS sessions (
    session_id     text        PRIMARY KEY,
    stream_id      text        NOT NULL,
    source         text        NOT NULL CHECK (source IN ('live', 'replay')),
    -- The session a replay run replays; written by the replay command, never by the archiver.
    replay_of      text,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    end_reason     text,
    first_event_at timestamptz NOT NULL,
    last_event_at  timestamptz NOT NULL,
    event_count    bigint      NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_stream_started ON sessions (stream_id, started_at DESC);
CREATE INDEX IF NOT EXISTS sessions_replay_of ON sessions (replay_of) WHERE replay_of IS NOT NULL;

-- rules: written by the API, read by the rules stage. `action` is {type, template, params};
-- `meta` carries flags such as skipReplay. Changes are announced on the `ttlc_rules` channel so the
-- rules stage reloads without a restart.
CREATE TABLE IF NOT EXISTS rules (
    id          text        PRIMARY KEY DEFAULT gen_random_uuid()::text,
    stream_id   text,
    name        text        NOT NULL,
    description text,
    event_type  text        NOT NULL,
    condition   jsonb       NOT NULL,
    action      jsonb       NOT NULL,
    enabled     boolean     NOT NULL DEFAULT true,
    priority    integer     NOT NULL DEFAULT 0,
    meta        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    cooldown_ms bigint      NOT NULL DEFAULT 0 CHECK (cooldown_ms >= 0),
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rules_stream ON rules (stream_id);

CREATE OR REPLACE FUNCTION ttlc_rules_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ttlc_rules', COALESCE(NEW.id, OLD.id));
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS rules_notify ON rules;
CREATE TRIGGER rules_notify AFTER INSERT OR UPDATE OR DELETE ON rules
    FOR EACH ROW EXECUTE FUNCTION ttlc_rules_notify();

-- actions_log: one row per execution attempt outcome (success, failed, skipped).
CREATE TABLE IF NOT EXISTS actions_log (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id         text        NOT NULL,
    rule_id           text        NOT NULL,
    event_id          text        NOT NULL,
    stream_id         text        NOT NULL,
    session_id        text,
    action_type       text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('success', 'failed', 'skipped')),
    attempt           integer     NOT NULL DEFAULT 1,
    rendered_template text,
    error             text,
    duration_ms       bigint,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS actions_log_action ON actions_log (action_id);
-- The executor's idempotency key: an action succeeds at most once.
CREATE UNIQUE INDEX IF NOT EXISTS actions_log_one_success ON actions_log (action_id)
    WHERE status = 'success';
CREATE INDEX IF NOT EXISTS actions_log_stream_time ON actions_log (stream_id, created_at);
CREATE INDEX IF NOT EXISTS actions_log_created_brin ON actions_log USING brin (created_at);

-- user_notes: moderator notes about a user, optionally scoped to one stream.
CREATE TABLE IF NOT EXISTS user_notes (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    text        NOT NULL,
    stream_id  text,
    author     text        NOT NULL,
    note       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS user_notes_user ON user_notes (user_id, created_at);

-- gdpr_erasures: the audit of every erasure (who asked, whom, what was removed).
CREATE TABLE IF NOT EXISTS gdpr_erasures (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_by      text        NOT NULL,
    subject_user_id   text,
    subject_unique_id text,
    -- Rows removed per table, e.g. {"events": 12, "users": 1, "user_notes": 0}.
    counts            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    erased_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (subject_user_id IS NOT NULL OR subject_unique_id IS NOT NULL)
);
