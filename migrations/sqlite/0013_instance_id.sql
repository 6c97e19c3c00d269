-- Which instance (server process, by its `[server] instance` id) started each call: at start
-- an instance fails only its own calls left `processing`, and the calls of an instance whose
-- heartbeat went silent are failed by another. '' marks rows from before this migration.
ALTER TABLE model_calls ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
CREATE INDEX model_calls_instance_processing ON model_calls (instance_id)
WHERE status = 'processing';

-- One row per live instance, its heartbeat in last_seen (Unix ms). A row silent for
-- `[database] instance_dead_after_s` is removed by whichever instance fails its calls.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
);
