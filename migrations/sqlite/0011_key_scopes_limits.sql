-- Key scopes (expiry, model allow-list, spend cap) and rate-limit overrides for keys and
-- users. A limit column that is NULL follows the [limits] default; 0 means no limit.
-- Every column here changes through UPDATE, which moves the 'auth' revision (0001's
-- triggers): servers reload keys, scopes and limits together.

ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;             -- Unix ms; NULL: never
ALTER TABLE api_keys ADD COLUMN models TEXT;                    -- JSON list of globs; NULL: any
ALTER TABLE api_keys ADD COLUMN budget INTEGER CHECK (budget IS NULL OR budget >= 0);
ALTER TABLE api_keys ADD COLUMN budget_period TEXT
    CHECK (budget_period IS NULL OR budget_period IN ('day', 'month'));
ALTER TABLE api_keys ADD COLUMN rpm INTEGER CHECK (rpm IS NULL OR rpm >= 0);
ALTER TABLE api_keys ADD COLUMN tpm INTEGER CHECK (tpm IS NULL OR tpm >= 0);
ALTER TABLE api_keys ADD COLUMN concurrency INTEGER
    CHECK (concurrency IS NULL OR concurrency >= 0);

ALTER TABLE users ADD COLUMN rpm INTEGER CHECK (rpm IS NULL OR rpm >= 0);
ALTER TABLE users ADD COLUMN tpm INTEGER CHECK (tpm IS NULL OR tpm >= 0);
ALTER TABLE users ADD COLUMN concurrency INTEGER CHECK (concurrency IS NULL OR concurrency >= 0);

-- A key's spend in the current day or month is summed from its calls at start.
CREATE INDEX model_calls_key_time ON model_calls (api_key_id, created_at);
