"""PostgreSQL connections and migrations: migrations/postgres/NNNN_name.sql, each applied in one
transaction and recorded in schema_migrations, like the SQLite backend's."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg

from hubproxy.store.migrate import MigrationError, available, migrations_dir

# pg_advisory_xact_lock's key: instances migrating at once take turns, and the later ones
# find each migration applied already.
_MIGRATE_LOCK = 0x6875_6270_726F


async def connect(url: str, *, timeout_s: float = 10.0) -> asyncpg.Connection:
    """One connection to `url` (postgresql://user@host:port/database)."""
    conn: asyncpg.Connection = await asyncpg.connect(url, timeout=timeout_s)
    return conn


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> list[str]:
    """Apply what is not yet applied; return the names applied. Re-running is a no-op."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
    )
    applied: list[str] = []
    for path in available(directory or migrations_dir("postgres")):
        version = path.name[:4]
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
                done = await conn.fetchval(
                    "SELECT 1 FROM schema_migrations WHERE version = $1", version
                )
                if done:
                    continue
                # No arguments: the simple query protocol runs the whole script.
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    version,
                    path.name,
                    int(time.time() * 1000),
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"{path.name} failed and was rolled back: {exc}") from exc
        applied.append(path.name)
    return applied
