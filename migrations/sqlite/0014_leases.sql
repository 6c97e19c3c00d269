-- The columns and table PostgreSQL's 0003_leases.sql adds, so that both schemas stay the same
-- column for column. SQLite has one process: its whole balance is its lease, nothing is ever
-- leased here (leased stays 0, credit_leases empty), and its meter cursor is the ledger id
-- alone (xid stays NULL / 0).
ALTER TABLE credit_balances ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;

CREATE TABLE credit_leases (
    instance    TEXT NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    amount      INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (instance, user_id)
);

ALTER TABLE credit_ledger ADD COLUMN xid INTEGER;
ALTER TABLE meter_cursor ADD COLUMN xid INTEGER NOT NULL DEFAULT 0;
