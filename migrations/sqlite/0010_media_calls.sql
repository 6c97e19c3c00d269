-- model_calls admits image and audio calls, and records the app a call came from (AIGNE's
-- x-aigne-hub-client-did, or a v1 app's DID), the app's end user (v1's x-app-user-did), and
-- how the call was paid for ('credits': debited; 'subscription': a v1 app's subscription
-- covers it, the credits column says what it would have cost and nothing was debited).
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with every column
-- of 0001, 0002 and 0009, and its indexes (0001's partial index, 0004's) are made again.
CREATE TABLE model_calls_new (
    id                 TEXT PRIMARY KEY,     -- time-ordered: 12 hex digits of ms, then random
    request_id         TEXT NOT NULL,
    user_id            INTEGER,
    api_key_id         INTEGER,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    type               TEXT NOT NULL CHECK (type IN ('chat', 'embedding', 'image', 'audio')),
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
    finished_at        INTEGER,
    credits            INTEGER NOT NULL DEFAULT 0,
    params             TEXT,                 -- JSON of the parameters that set the price
    attempts           INTEGER NOT NULL DEFAULT 1,
    app_id             TEXT,                 -- the calling app's DID, when it said
    app_user           TEXT,                 -- a v1 app's end user (x-app-user-did)
    billing            TEXT NOT NULL DEFAULT 'credits'
        CHECK (billing IN ('credits', 'subscription'))
);
INSERT INTO model_calls_new (id, request_id, user_id, api_key_id, provider, model, type, stream,
                             status, prompt_tokens, completion_tokens, total_tokens,
                             usage_estimated, duration_ms, ttfb_ms, upstream_status, error,
                             trace_id, created_at, finished_at, credits, params, attempts)
SELECT id, request_id, user_id, api_key_id, provider, model, type, stream, status,
       prompt_tokens, completion_tokens, total_tokens, usage_estimated, duration_ms, ttfb_ms,
       upstream_status, error, trace_id, created_at, finished_at, credits, params, attempts
FROM model_calls;
DROP TABLE model_calls;
ALTER TABLE model_calls_new RENAME TO model_calls;
CREATE INDEX model_calls_processing ON model_calls (created_at) WHERE status = 'processing';
CREATE INDEX model_calls_user_id ON model_calls (user_id, id);

-- A v1 app calls as a hub user of its own, named 'app:<did>', made when it registers: its
-- calls are recorded under that user like any other.
ALTER TABLE apps ADD COLUMN user_id INTEGER REFERENCES users (id);
