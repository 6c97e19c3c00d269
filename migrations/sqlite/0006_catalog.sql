-- The control plane: providers, their sealed credentials, the model catalogue and aliases,
-- managed while serving. Ids are chosen by the writer ("prv_…", "crd_…", "mdl_…"): a
-- credential's id is sealed into its ciphertext, so it must be known before the insert.

CREATE TABLE providers (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    type               TEXT NOT NULL CHECK (type IN ('openai', 'anthropic', 'gemini', 'azure', 'fake')),
    base_url           TEXT NOT NULL DEFAULT '',
    headers            TEXT NOT NULL DEFAULT '{}',   -- JSON object of extra request headers
    api_version        TEXT NOT NULL DEFAULT '',
    connect_timeout_s  REAL NOT NULL CHECK (connect_timeout_s > 0),
    idle_timeout_s     REAL NOT NULL CHECK (idle_timeout_s > 0),
    enabled            INTEGER NOT NULL DEFAULT 1,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

-- AES-256-GCM: nonce (12 bytes), ciphertext with its tag, the id of the master key that
-- sealed it, and the associated data "credential id, provider id". `hint` is the masked key.
-- The state columns mirror what a server last saw (for `credentials list`); servers keep
-- the live state in memory and do not reload on them.
CREATE TABLE provider_credentials (
    id           TEXT PRIMARY KEY,
    provider_id  TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    weight       INTEGER NOT NULL CHECK (weight > 0),
    enabled      INTEGER NOT NULL DEFAULT 1,
    nonce        BLOB NOT NULL,
    ciphertext   BLOB NOT NULL,
    key_id       TEXT NOT NULL,
    hint         TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cooling', 'disabled')),
    last_error   TEXT,
    resting_until INTEGER,
    last_used_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (provider_id, label)
);
CREATE INDEX provider_credentials_provider ON provider_credentials (provider_id);

-- Rows by provider name, so that config-file providers can have catalogue rows too.
CREATE TABLE catalog_models (
    id              TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    type            TEXT NOT NULL DEFAULT 'chat' CHECK (type IN ('chat', 'embedding', 'image', 'audio')),
    display_name    TEXT NOT NULL DEFAULT '',
    context_window  INTEGER CHECK (context_window IS NULL OR context_window > 0),
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (provider, model)
);

CREATE TABLE model_aliases (
    name        TEXT PRIMARY KEY,
    targets     TEXT NOT NULL,          -- JSON array of "provider/model" or alias names, in order
    updated_at  INTEGER NOT NULL
);

INSERT INTO revisions (name, value) VALUES ('catalog', 0);
CREATE TRIGGER providers_insert AFTER INSERT ON providers
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER providers_update AFTER UPDATE ON providers
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER providers_delete AFTER DELETE ON providers
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER provider_credentials_insert AFTER INSERT ON provider_credentials
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
-- Not on the state columns: those are a server's report, not a change to reload.
CREATE TRIGGER provider_credentials_update
AFTER UPDATE OF label, weight, enabled, nonce, ciphertext, key_id ON provider_credentials
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER provider_credentials_delete AFTER DELETE ON provider_credentials
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER catalog_models_insert AFTER INSERT ON catalog_models
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER catalog_models_update AFTER UPDATE ON catalog_models
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER catalog_models_delete AFTER DELETE ON catalog_models
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER model_aliases_insert AFTER INSERT ON model_aliases
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER model_aliases_update AFTER UPDATE ON model_aliases
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
CREATE TRIGGER model_aliases_delete AFTER DELETE ON model_aliases
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'catalog'; END;
