-- Credit billing: model rates, balances kept by an append-only ledger, the meter outbox and
-- usage rollups. Money is integer micro-credits (1 credit = 1,000,000).

CREATE TABLE model_rates (
    provider      TEXT NOT NULL,
    model         TEXT NOT NULL,
    type          TEXT NOT NULL DEFAULT 'chat' CHECK (type IN ('chat', 'embedding')),
    input         TEXT NOT NULL DEFAULT '0',   -- credits per 1M tokens, as a decimal string
    output        TEXT NOT NULL DEFAULT '0',
    cached_input  TEXT,                        -- NULL: cached input costs the input rate
    per_image     TEXT NOT NULL DEFAULT '0',   -- credits per image
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (provider, model, type)
);

CREATE TABLE credit_balances (
    user_id  INTEGER PRIMARY KEY REFERENCES users (id),
    balance  INTEGER NOT NULL DEFAULT 0       -- always the sum of the user's ledger
);

-- Ids grow with each row (a rowid is max + 1, and no row is ever deleted: see the triggers),
-- which is what servers tail the ledger by; AUTOINCREMENT would only add a write per row.
CREATE TABLE credit_ledger (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    kind        TEXT NOT NULL CHECK (kind IN ('grant', 'debit', 'refund', 'adjustment')),
    amount      INTEGER NOT NULL,             -- signed micro-credits; a debit is negative
    call_id     TEXT,                         -- the ModelCall a debit settles
    source      TEXT NOT NULL DEFAULT '',     -- the server process that wrote it; '' = CLI
    note        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    CHECK (kind <> 'debit' OR (call_id IS NOT NULL AND amount <= 0)),
    CHECK (kind NOT IN ('grant', 'refund') OR amount >= 0)
);
-- A call is settled once, ever.
CREATE UNIQUE INDEX credit_ledger_debit_once ON credit_ledger (call_id) WHERE kind = 'debit';

CREATE TRIGGER credit_ledger_balance AFTER INSERT ON credit_ledger
BEGIN
    INSERT INTO credit_balances (user_id, balance) VALUES (NEW.user_id, NEW.amount)
    ON CONFLICT (user_id) DO UPDATE SET balance = balance + NEW.amount;
END;
CREATE TRIGGER credit_ledger_no_update BEFORE UPDATE ON credit_ledger
BEGIN SELECT RAISE(ABORT, 'credit_ledger is append-only'); END;
CREATE TRIGGER credit_ledger_no_delete BEFORE DELETE ON credit_ledger
BEGIN SELECT RAISE(ABORT, 'credit_ledger is append-only'); END;
-- Servers follow changes made elsewhere (the CLI) by these counters.
INSERT INTO revisions (name, value) VALUES ('credits', 0), ('rates', 0);
CREATE TRIGGER credit_ledger_external AFTER INSERT ON credit_ledger WHEN NEW.source = ''
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'credits'; END;
CREATE TRIGGER model_rates_insert AFTER INSERT ON model_rates
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'rates'; END;
CREATE TRIGGER model_rates_update AFTER UPDATE ON model_rates
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'rates'; END;
CREATE TRIGGER model_rates_delete AFTER DELETE ON model_rates
BEGIN UPDATE revisions SET value = value + 1 WHERE name = 'rates'; END;

ALTER TABLE model_calls ADD COLUMN credits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE model_calls ADD COLUMN params TEXT;   -- JSON of the parameters that set the price

-- The meter outbox is the ledger itself: its debits, in id order, are the usage events. The
-- export task posts those past its cursor and moves the cursor only once they were accepted,
-- so a settled debit is never lost or skipped, and costs no second write.
CREATE TABLE meter_cursor (
    name       TEXT PRIMARY KEY,
    ledger_id  INTEGER NOT NULL                 -- the last debit the webhook accepted
);
INSERT INTO meter_cursor (name, ledger_id) VALUES ('webhook', 0);

-- Hourly and daily usage per user, key (the "app") and model, kept by the writer with each
-- finished call. Latencies are log-scale histograms (JSON arrays of counts) for p50/p95.
CREATE TABLE usage_rollups (
    period             TEXT NOT NULL CHECK (period IN ('hour', 'day')),
    bucket             INTEGER NOT NULL,      -- the period's start, Unix ms (UTC)
    user_id            INTEGER NOT NULL,
    api_key_id         INTEGER NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    requests           INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    credits            INTEGER NOT NULL DEFAULT 0,
    duration_hist      TEXT NOT NULL,
    ttfb_hist          TEXT NOT NULL,
    PRIMARY KEY (period, bucket, user_id, api_key_id, provider, model)
);
CREATE INDEX usage_rollups_user ON usage_rollups (user_id, period, bucket);
