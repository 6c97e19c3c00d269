-- AIGNE v1 apps and their subscriptions, and rates for media (images, audio).

-- An app that signs its calls with an ed25519 key (AIGNE v1). Its DID is derived from the key.
CREATE TABLE apps (
    did                  TEXT PRIMARY KEY,
    public_key           TEXT NOT NULL UNIQUE,         -- 0x + 64 lower-case hex digits
    created_at           INTEGER NOT NULL,              -- Unix ms
    subscription_status  TEXT NOT NULL DEFAULT 'none'
        CHECK (subscription_status IN ('none', 'active', 'canceled', 'past_due')),
    subscription_until   INTEGER,                       -- Unix ms; NULL: none ever set
    updated_at           INTEGER NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('apps', 0);
CREATE TRIGGER apps_insert AFTER INSERT ON apps
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'apps'; END;
CREATE TRIGGER apps_update AFTER UPDATE ON apps
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'apps'; END;

-- model_rates gains media prices and the image and audio types. SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt (its triggers go with it and are made again).
CREATE TABLE model_rates_new (
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    type                TEXT NOT NULL DEFAULT 'chat'
        CHECK (type IN ('chat', 'embedding', 'image', 'audio')),
    input               TEXT NOT NULL DEFAULT '0',   -- credits per 1M tokens, as a decimal string
    output              TEXT NOT NULL DEFAULT '0',
    cached_input        TEXT,                        -- NULL: cached input costs the input rate
    per_image           TEXT NOT NULL DEFAULT '0',   -- credits per image
    per_image_variants  TEXT,                        -- JSON {"size/quality": credits}, or NULL
    per_1m_chars        TEXT NOT NULL DEFAULT '0',   -- credits per 1M input characters (speech)
    per_second          TEXT NOT NULL DEFAULT '0',   -- credits per second of audio
    per_mb              TEXT NOT NULL DEFAULT '0',   -- credits per MB (10^6 bytes) uploaded
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (provider, model, type)
);
INSERT INTO model_rates_new (provider, model, type, input, output, cached_input, per_image,
                             updated_at)
SELECT provider, model, type, input, output, cached_input, per_image, updated_at
FROM model_rates;
DROP TABLE model_rates;
ALTER TABLE model_rates_new RENAME TO model_rates;
CREATE TRIGGER model_rates_insert AFTER INSERT ON model_rates
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'rates'; END;
CREATE TRIGGER model_rates_update AFTER UPDATE ON model_rates
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'rates'; END;
CREATE TRIGGER model_rates_delete AFTER DELETE ON model_rates
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'rates'; END;
UPDATE revisions SET value = value + 1 WHERE name = 'rates';
