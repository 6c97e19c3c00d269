-- The readiness probe's row: /health/ready writes it through the writer to prove that the
-- database accepts writes (a full or read-only disk fails the write, and readiness with it).
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);
