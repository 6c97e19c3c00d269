-- Rollups a crash kept in memory are rebuilt at start from the calls that finished past the
-- watermark: the writer moves it in the same transaction as each rollup drain. 0 at first:
-- the first start after this migration rebuilds every rollup once from the calls.
CREATE TABLE usage_watermark (
    name         TEXT PRIMARY KEY,
    finished_at  INTEGER NOT NULL    -- Unix ms: calls finished before it are rolled up
);
INSERT INTO usage_watermark (name, finished_at) VALUES ('rollups', 0);

-- Who granted: the admin (users.id) behind a grant, refund or adjustment made through the
-- admin API; NULL for the CLI (an operator at the server's shell) and for debits.
ALTER TABLE credit_ledger ADD COLUMN actor_user_id INTEGER REFERENCES users (id);
