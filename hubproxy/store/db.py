"""Database connections with the pragmas hubproxy relies on, and the reads the server makes."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from hubproxy.config import DatabaseSettings
from hubproxy.store import follow
from hubproxy.store.accounts import KEY_SETTINGS, USER_LIMITS
from hubproxy.store.follow import Cursor
from hubproxy.store.reader import Reader

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


async def revisions(conn: Reader) -> dict[str, int]:
    async with conn.execute("SELECT name, value FROM revisions") as cur:
        return {str(r[0]): int(r[1]) for r in await cur.fetchall()}


async def active_keys(conn: Reader) -> list[dict[str, Any]]:
    """Every key that is not revoked, with its owner, its scope and both their limits."""
    sql = (
        "SELECT k.id, k.key_hash, u.id AS user_id, u.name AS user_name, u.role, "
        "k.expires_at, k.models, k.budget, k.budget_period, k.rpm, k.tpm, k.concurrency, "
        "u.rpm AS user_rpm, u.tpm AS user_tpm, u.concurrency AS user_concurrency "
        "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.revoked_at IS NULL"
    )
    async with conn.execute(sql) as cur:
        return [dict(zip(row.keys(), row, strict=True)) for row in await cur.fetchall()]


async def key_spend(
    conn: Reader, day_start: int, month_start: int, dialect: str = "sqlite"
) -> tuple[dict[int, tuple[int, int]], Cursor]:
    """Each key's credits spent since `day_start` and since `month_start` (by its calls'
    creation times; the day lies within the month), and the cursor to follow the ledger's
    debits from (`key_debits`), read in one transaction so they agree."""
    sql = (
        "SELECT api_key_id, sum(CASE WHEN created_at >= ? THEN credits ELSE 0 END), "
        "sum(credits) FROM model_calls WHERE api_key_id IS NOT NULL AND created_at >= ? "
        "AND credits > 0 GROUP BY api_key_id"
    )
    await conn.execute("BEGIN")
    try:
        async with conn.execute(sql, (day_start, month_start)) as cur:
            rows = await cur.fetchall()
        cursor = await follow.start(conn, dialect)
    finally:
        await conn.execute("COMMIT")
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}, cursor


async def key_debits(
    conn: Reader, cursor: Cursor, source: str
) -> tuple[list[tuple[int, int, int]], Cursor]:
    """(key id, the call's created_at, credits) of the debits past `cursor` that another
    process wrote (what other servers spent on each key), and the cursor after them. On SQLite
    ids only grow in commit order, so the bound read first leaves nothing behind; on
    PostgreSQL the rows and the next cursor are read in one snapshot (store/follow.py)."""
    where, params = follow.after(cursor)
    sql = (
        "SELECT c.api_key_id, c.created_at, -l.amount FROM credit_ledger l "
        f"JOIN model_calls c ON c.id = l.call_id WHERE {where} "
        "AND l.kind = 'debit' AND l.source <> ? AND c.api_key_id IS NOT NULL"
    )
    if cursor.snapshot is None:
        last = await follow.start(conn, "sqlite")
        async with conn.execute(
            sql + " AND l.id <= ? ORDER BY l.id", (*params, source, last.id)
        ) as cur:
            rows = list(await cur.fetchall())
        moved = Cursor(max(last.id, cursor.id))
    else:
        rows, moved = await follow.read(conn, sql + " ORDER BY l.id", (*params, source))
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows], moved


async def key_settings(conn: Reader, key_id: int) -> dict[str, Any] | None:
    """One key's scope and limits, with its owner's name (accounts.KEY_SETTINGS)."""
    async with conn.execute(KEY_SETTINGS, (key_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None else dict(zip(row.keys(), row, strict=True))


async def user_limits(conn: Reader, name: str) -> dict[str, Any] | None:
    async with conn.execute(USER_LIMITS, (name,)) as cur:
        row = await cur.fetchone()
    return None if row is None else dict(zip(row.keys(), row, strict=True))
