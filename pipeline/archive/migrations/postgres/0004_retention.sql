-- Retention (`ttlc prune`, SPEC §8): events older than `retention.events_archive_days` (90) leave
-- `events` for `events_archive`, where they stay until `retention.events_delete_days` (120) and
-- are then hard-deleted. "Archived" therefore means: out of the application's reach (ttlc_app
-- has no privilege on this table, so history, replay and the API no longer see the event) but
-- still in the system of record for the grace period, where an operator can restore it
-- (`INSERT INTO events SELECT … FROM events_archive`) or export it (`\copy`), and where GDPR
-- erasure still finds it in the same transaction as everything else. Idempotent, like 0001.
CREATE TABLE IF NOT EXISTS events_archive (
    event_id     text        PRIMARY KEY,
    stream_id    text        NOT NULL,
    session_id   text        NOT NULL,
    event_type   text        NOT NULL,
    trigger_id   smallint    NOT NULL,
    user_id      text        NOT NULL,
    unique_id    text        NOT NULL,
    raw_type     text,
    source       text        NOT NULL,
    seq_no       bigint,
    "timestamp"  timestamptz NOT NULL,
    ingested_at  timestamptz,
    archived_at  timestamptz NOT NULL,
    event_data   jsonb       NOT NULL,
    -- When retention moved the row here from `events`.
    moved_at     timestamptz NOT NULL DEFAULT now()
);
-- The hard delete goes by event time, like the move.
CREATE INDEX IF NOT EXISTS events_archive_time_brin ON events_archive USING brin ("timestamp");
-- GDPR erasure by user.
CREATE INDEX IF NOT EXISTS events_archive_user ON events_archive (user_id);
-- GDPR erasure redacts the actions that rendered a subject's events.
CREATE INDEX IF NOT EXISTS actions_log_event ON actions_log (event_id);
-- Pruning sessions and streams by last activity.
CREATE INDEX IF NOT EXISTS sessions_last_event ON sessions (last_event_at);
CREATE INDEX IF NOT EXISTS streams_last_seen ON streams (last_seen);

-- Only maintenance touches the archive (0002's default privileges already grant ttlc_maint
-- SELECT/INSERT/UPDATE/DELETE on new tables; spelled out so the intent survives a change there).
REVOKE ALL ON events_archive FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON events_archive TO ttlc_maint;
-- Retention deletes old sessions and streams; 0002 granted it on every table that existed then,
-- restated here so this file documents everything maintenance does.
GRANT SELECT, INSERT, UPDATE, DELETE ON events, users, sessions, streams, actions_log,
    user_notes, gdpr_erasures TO ttlc_maint;
