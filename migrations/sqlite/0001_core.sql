-- Users, hub API keys (hashed) and the ModelCall log.
-- Times are Unix milliseconds (INTEGER): cheap to compare, sort and roll up.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    label       TEXT NOT NULL DEFAULT '',
    prefix      TEXT NOT NULL,               -- the first characters, to recognise a key by
    key_hash    TEXT NOT NULL UNIQUE,        -- SHA-256 of the whole key, hex
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- A counter per kind of cached state; servers poll it and reload only what changed.
CREATE TABLE revisions (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('auth', 0);

CREATE TRIGGER api_keys_insert AFTER INSERT ON api_keys
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'auth'; END;
CREATE TRIGGER api_keys_update AFTER UPDATE ON api_keys
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'auth'; END;
CREATE TRIGGER api_keys_delete AFTER DELETE ON api_keys
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'auth'; END;
CREATE TRIGGER users_update AFTER UPDATE ON users
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'auth'; END;
CREATE TRIGGER users_delete AFTER DELETE ON users
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'auth'; END;

CREATE TABLE model_calls (
    id                 TEXT PRIMARY KEY,     -- time-ordered: 12 hex digits of ms, then random
    request_id         TEXT NOT NULL,
    user_id            INTEGER,
    api_key_id         INTEGER,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    type               TEXT NOT NULL CHECK (type IN ('chat', 'embedding')),
    stream             INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL CHECK (status IN ('processing', 'success', 'failed')),
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    usage_estimated    INTEGER NOT NULL DEFAULT 0,
    duration_ms        INTEGER,
    ttfb_ms            INTEGER,
    upstream_status    INTEGER,
    error              TEXT,
    trace_id           TEXT,
    created_at         INTEGER NOT NULL,
    finished_at        INTEGER
);
CREATE INDEX model_calls_user_time ON model_calls (user_id, created_at);
CREATE INDEX model_calls_processing ON model_calls (created_at) WHERE status = 'processing';
