"""Database connections with the pragmas hubproxy relies on, and the reads the server makes."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from hubproxy.config import DatabaseSettings

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",  # readers never block the writer, nor it them
    "PRAGMA synchronous = NORMAL",  # a commit survives a process crash; fsync at checkpoints
    "PRAGMA foreign_keys = ON",
)


def connect(settings: DatabaseSettings) -> sqlite3.Connection:
    """A blocking connection in autocommit mode: callers say BEGIN and COMMIT themselves."""
    settings.path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        settings.path,
        isolation_level=None,
        check_same_thread=False,  # the writer opens it on the loop and uses it on its thread
        timeout=settings.busy_timeout_ms / 1000,
    )
    _prepare(conn.execute, settings.busy_timeout_ms)
    conn.row_factory = sqlite3.Row
    return conn


async def open_reader(settings: DatabaseSettings) -> aiosqlite.Connection:
    """The server's read connection (admin views, cache reloads); never on the request path."""
    conn = await aiosqlite.connect(settings.path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    for pragma in _PRAGMAS[1:]:
        await conn.execute(pragma)
    await conn.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}")
    return conn


def _prepare(execute: Any, busy_timeout_ms: int) -> None:
    execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    for pragma in _PRAGMAS:
        execute(pragma)


async def revisions(conn: aiosqlite.Connection) -> dict[str, int]:
    async with conn.execute("SELECT name, value FROM revisions") as cur:
        return {str(r[0]): int(r[1]) for r in await cur.fetchall()}


async def active_keys(conn: aiosqlite.Connection) -> list[dict[str, Any]]:
    """Every key that is not revoked, with its owner."""
    sql = (
        "SELECT k.id, k.key_hash, u.id AS user_id, u.name AS user_name, u.role "
        "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.revoked_at IS NULL"
    )
    async with conn.execute(sql) as cur:
        return [dict(zip(row.keys(), row, strict=True)) for row in await cur.fetchall()]
