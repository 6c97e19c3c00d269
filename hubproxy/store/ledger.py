"""Credits and rates in the database: ledger entries and rates as writer ops, the reads that
load them, the grant history, and the ledger's debits as the meter outbox."""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from hubproxy.store import follow
from hubproxy.store.clock import now_ms
from hubproxy.store.follow import Cursor
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader

_ENTRY = (
    "INSERT INTO credit_ledger (user_id, kind, amount, call_id, source, note, created_at, "
    "actor_user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# A second settlement of the same call is a no-op: the unique index keeps the first.
DEBIT = _ENTRY + " ON CONFLICT (call_id) WHERE kind = 'debit' DO NOTHING"
RATE_COLUMNS = ("input", "output", "cached_input", "per_image", "per_image_variants",
                "per_1m_chars", "per_second", "per_mb")  # fmt: skip
_RATE = (
    f"INSERT INTO model_rates (provider, model, type, {', '.join(RATE_COLUMNS)}, updated_at) "
    f"VALUES (?, ?, ?, {', '.join('?' for _ in RATE_COLUMNS)}, ?) "
    "ON CONFLICT (provider, model, type) DO "
)
# A settled debit as a usage event: what the call was, and what it cost.
_DEBITS = (
    "SELECT l.id AS ledger_id, l.call_id, l.user_id, -l.amount AS credits, c.api_key_id, "
    "c.provider, c.model, c.type, c.prompt_tokens, c.completion_tokens, c.usage_estimated, "
    "c.created_at FROM credit_ledger l LEFT JOIN model_calls c ON c.id = l.call_id "
    "WHERE l.kind = 'debit' AND l.id > ? ORDER BY l.id LIMIT ?"
)


def entry(
    user_id: int,
    kind: str,
    amount: int,
    *,
    source: str,
    note: str = "",
    actor_user_id: int | None = None,
) -> Op:
    """A grant, refund or adjustment (amount signed, micro-credits), and who made it: the
    admin's user id, or None from the CLI."""
    return _ENTRY, (user_id, kind, amount, None, source, note, now_ms(), actor_user_id)


def debit(user_id: int, call_id: str, amount: int, source: str) -> Op:
    return DEBIT, (user_id, "debit", -amount, call_id, source, "", now_ms(), None)


def set_rate(
    provider: str, model: str, kind: str, strings: dict[str, str | None], *, replace: bool = True
) -> Op:
    """Upsert a rate; with replace=False an existing rate wins (seeding from config)."""
    action = (
        "UPDATE SET "
        + "".join(f"{c} = excluded.{c}, " for c in RATE_COLUMNS)
        + "updated_at = excluded.updated_at"
        if replace
        else "NOTHING"
    )
    values = [strings.get(c, None if c in ("cached_input", "per_image_variants") else "0")
              for c in RATE_COLUMNS]  # fmt: skip
    return _RATE + action, (provider, model, kind, *values, now_ms())


def meter_accepted(ledger_id: int) -> Op:
    """The webhook accepted every debit up to this ledger id."""
    return "UPDATE meter_cursor SET ledger_id = ? WHERE name = 'webhook'", (ledger_id,)


async def snapshot(conn: Reader, dialect: str = "sqlite") -> tuple[dict[int, int], Cursor]:
    """Every balance, and the cursor to `tail` from, read in one transaction so they agree."""
    await conn.execute("BEGIN")
    try:
        async with conn.execute("SELECT user_id, balance FROM credit_balances") as cur:
            balances = {int(r[0]): int(r[1]) for r in await cur.fetchall()}
        cursor = await follow.start(conn, dialect)
    finally:
        await conn.execute("COMMIT")
    return balances, cursor


async def tail(
    conn: Reader, cursor: Cursor, source: str
) -> tuple[list[tuple[int, int, int]], Cursor]:
    """(id, user_id, amount) of the ledger rows past `cursor` that another process wrote, in
    id order, and the cursor after them (store/follow.py: on PostgreSQL no row committing out
    of id order is skipped)."""
    where, params = follow.after(cursor)
    sql = (
        f"SELECT l.id, l.user_id, l.amount FROM credit_ledger l WHERE {where} "
        "AND l.source <> ? ORDER BY l.id"
    )
    if cursor.snapshot is None:  # SQLite: ids commit in order; the last one read is the cursor
        async with conn.execute(sql, (*params, source)) as cur:
            rows = list(await cur.fetchall())
        moved = Cursor(max([cursor.id, *(int(r[0]) for r in rows)]))
    else:
        rows, moved = await follow.read(conn, sql, (*params, source))
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows], moved


async def rates(conn: Reader) -> list[dict[str, Any]]:
    sql = f"SELECT provider, model, type, {', '.join(RATE_COLUMNS)} FROM model_rates"
    async with conn.execute(sql) as cur:
        return [dict(zip(r.keys(), r, strict=True)) for r in await cur.fetchall()]


async def meter_pending(conn: Reader, limit: int) -> list[dict[str, Any]]:
    """The next usage events the webhook has not accepted, oldest first. Each carries its
    idempotency key (the call id): a receiver drops a key it has seen."""
    async with conn.execute("SELECT ledger_id FROM meter_cursor WHERE name = 'webhook'") as cur:
        row = await cur.fetchone()
    async with conn.execute(_DEBITS, (int(row[0]) if row else 0, limit)) as cur:
        rows = await cur.fetchall()
    return [meter_event(r) for r in rows]


class Row(Protocol):
    """A row by column name: sqlite3's, aiosqlite's or asyncpg's."""

    def __getitem__(self, key: str, /) -> Any: ...


def meter_event(r: Row) -> dict[str, Any]:
    """The webhook's event for one debit row (either backend's exporter)."""
    return {
        "idempotency_key": r["call_id"],
        "ledger_id": r["ledger_id"],
        "user_id": r["user_id"],
        "api_key_id": r["api_key_id"],
        "model": f"{r['provider']}/{r['model']}",
        "type": r["type"],
        "credits": r["credits"],
        "prompt_tokens": r["prompt_tokens"],
        "completion_tokens": r["completion_tokens"],
        "usage_estimated": bool(r["usage_estimated"]),
        "created_at": r["created_at"],
    }


_GRANTS = (
    "SELECT l.id, u.name AS user, l.kind, l.amount, l.note, a.name AS actor, l.source, "
    "l.created_at FROM credit_ledger l JOIN users u ON u.id = l.user_id "
    "LEFT JOIN users a ON a.id = l.actor_user_id WHERE l.kind <> 'debit'"
)


async def grants(
    conn: Reader, *, user_id: int | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Grants, refunds and adjustments, newest first, before ledger id `before` (a page's
    cursor): who got what, the note, and who gave it (the admin's name; None from the CLI)."""
    sql, params = _GRANTS, []
    if user_id is not None:
        sql += " AND l.user_id = ?"
        params.append(user_id)
    if before is not None:
        sql += " AND l.id < ?"
        params.append(before)
    async with conn.execute(sql + " ORDER BY l.id DESC LIMIT ?", (*params, limit)) as cur:
        rows = await cur.fetchall()
    return [
        {"id": r["id"], "user": r["user"], "kind": r["kind"], "amount": r["amount"],
         "note": r["note"], "actor": r["actor"], "via": "api" if r["source"] else "cli",
         "created_at": r["created_at"]}
        for r in rows
    ]  # fmt: skip


def balance_of(conn: sqlite3.Connection, user_id: int) -> int:
    row = conn.execute("SELECT balance FROM credit_balances WHERE user_id = ?", (user_id,))
    found = row.fetchone()
    return int(found[0]) if found else 0


async def grant_totals(conn: Reader, user_id: int) -> tuple[int, int]:
    """How many grants a user was given, and their sum (micro-credits)."""
    async with conn.execute(
        "SELECT count(*), coalesce(sum(amount), 0) FROM credit_ledger "
        "WHERE user_id = ? AND kind = 'grant'",
        (user_id,),
    ) as cur:
        row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


# The oldest debit past the meter's cursor: on SQLite a ledger id; on PostgreSQL the
# (transaction id, ledger id) watermark its exporter moves (store/postgres/meter.py).
_LAG = {
    "sqlite": (
        "SELECT MIN(created_at) FROM credit_ledger WHERE kind = 'debit' AND id > "
        "COALESCE((SELECT ledger_id FROM meter_cursor WHERE name = 'webhook'), 0)"
    ),
    "postgres": (
        "SELECT MIN(l.created_at) FROM credit_ledger l JOIN meter_cursor m ON m.name = 'webhook' "
        "WHERE l.kind = 'debit' AND (l.xid, l.id) > (m.xid, m.ledger_id)"
    ),
}


async def meter_lag_s(conn: Reader, now: int, dialect: str = "sqlite") -> float:
    """Seconds since the oldest debit the meter webhook has not accepted; 0 when none waits."""
    async with conn.execute(_LAG[dialect]) as cur:
        row = await cur.fetchone()
    oldest = row[0] if row else None
    return 0.0 if oldest is None else max(0.0, (now - int(oldest)) / 1000)
