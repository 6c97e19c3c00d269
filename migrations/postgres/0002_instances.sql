-- Several instances on one database (SQLite's 0013_instance_id.sql, plus notifications).

-- Which instance started each call ('' for rows from before): at start an instance fails
-- only its own calls left `processing`; another fails those of an instance gone silent.
ALTER TABLE model_calls ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
CREATE INDEX model_calls_instance_processing ON model_calls (instance_id)
WHERE status = 'processing';

-- One row per live instance, its heartbeat in last_seen (Unix ms).
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL
);

-- Each revision bump also notifies `hubproxy_revisions` with the revision's name, delivered
-- to listeners when the transaction commits (identical payloads in one transaction are sent
-- once). Instances reload at once; their revision poll stays as the fallback.
CREATE OR REPLACE FUNCTION bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE revisions SET value = value + 1 WHERE name = TG_ARGV[0];
    PERFORM pg_notify('hubproxy_revisions', TG_ARGV[0]);
    RETURN NULL;
END;
$$;
