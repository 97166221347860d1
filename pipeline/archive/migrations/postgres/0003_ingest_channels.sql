-- ingest_channels: which TikTok users should be ingested (the desired state, written by the API's
-- /channels routes and by `ttlc ingest --channel`), and what the ingest process running each one
-- reports back. This table is the control plane between a standalone `ttlc api` and any number of
-- `ttlc ingest` processes; `ttlc all` uses it too, so there is one code path and channels survive
-- restarts. Every statement is idempotent, like 0001.
--
-- Leases: an ingest process runs a channel only while it holds a live lease on its row
-- (claimed_by = its instance id, lease_until in the future) and renews it every poll, so two
-- processes never both run a channel while PostgreSQL is reachable. A process that dies
-- (SIGKILL) stops renewing; once lease_until passes, another process (or its successor) claims
-- the channel. All times are PostgreSQL's now(), so the hosts' clocks never matter.
CREATE TABLE IF NOT EXISTS ingest_channels (
    -- The TikTok @uniqueId without the '@' (or a numeric room id).
    unique_id       text        PRIMARY KEY
                                CHECK (unique_id <> '' AND left(unique_id, 1) <> '@'),
    -- The stream scope of the STREAMER who started it; NULL when an operator (or the command
    -- line) did. Lets a streamer see their channel before its room id is known.
    owner_stream_id text,
    desired         text        NOT NULL CHECK (desired IN ('running', 'stopped')),
    -- Last start or stop request. A newer start of a channel that ended restarts it.
    requested_at    timestamptz NOT NULL DEFAULT now(),
    -- Reported by the ingest process holding the lease, every poll.
    state           text,
    room_id         text,
    session_id      text,
    last_error      text,
    status_at       timestamptz,
    -- The lease.
    claimed_by      text,
    lease_until     timestamptz
);
-- Ingest looks for claimable channels every poll.
CREATE INDEX IF NOT EXISTS ingest_channels_running ON ingest_channels (requested_at)
    WHERE desired = 'running';

-- A start or stop wakes the ingest processes at once (they LISTEN), instead of at their next
-- poll. Status writes do not touch these columns, so they notify nobody.
CREATE OR REPLACE FUNCTION ttlc_ingest_channels_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ttlc_channels', NEW.unique_id);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS ingest_channels_notify ON ingest_channels;
CREATE TRIGGER ingest_channels_notify AFTER INSERT OR UPDATE OF desired, requested_at
    ON ingest_channels FOR EACH ROW EXECUTE FUNCTION ttlc_ingest_channels_notify();

-- The API and ingest run as ttlc_app: they start, stop and report, never delete (a stopped
-- channel's row is its history).
REVOKE ALL ON ingest_channels FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ingest_channels TO ttlc_app;
