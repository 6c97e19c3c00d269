"""The meter's outbox on PostgreSQL: one exporter at a time, under a session advisory lock held
on a connection of its own (if its instance dies, its connection and so the lock go with it),
and a cursor that ids committing out of order cannot skip.

A ledger id is taken when a row is inserted, but the row is seen only when its transaction
commits, and transactions commit in any order: a cursor over ids alone can pass a row that
commits later with a smaller id, and lose it. Each ledger row records its transaction's id
(`xid`, xid8), and the export goes by (xid, id), taking only rows whose transaction is older
than every transaction still running (`xid < pg_snapshot_xmin(pg_current_snapshot())`). Every
such transaction has ended, so no row can still appear behind the cursor. A long transaction
delays the export, never loses a row.

The cursor moves on the locked connection itself: an exporter whose connection (and lock) is
gone cannot move it, and the one that takes over starts from it. The only events sent twice
are those of the one batch whose acceptance was not recorded; each carries its idempotency key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog

from hubproxy.store import ledger
from hubproxy.store.postgres import schema

log = structlog.get_logger("hubproxy.meter")

# pg_try_advisory_lock's key: the meter exporter (session level, on its own connection).
LOCK = 0x6875_6D65_7465

_PENDING = """
SELECT l.id AS ledger_id, l.xid::text AS xid, l.call_id, l.user_id, -l.amount AS credits,
       c.api_key_id, c.provider, c.model, c.type, c.prompt_tokens, c.completion_tokens,
       c.usage_estimated, c.created_at
FROM credit_ledger l
JOIN meter_cursor m ON m.name = 'webhook'
LEFT JOIN model_calls c ON c.id = l.call_id
WHERE l.kind = 'debit'
  AND (l.xid, l.id) > (m.xid, m.ledger_id)
  AND l.xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY l.xid, l.id
LIMIT $1
"""

_ACCEPTED = "UPDATE meter_cursor SET xid = $1::text::xid8, ledger_id = $2 WHERE name = 'webhook'"


class PgOutbox:
    """billing/meter.Outbox on PostgreSQL. `pending` waits, polling every `standby_s`, until
    this instance holds the exporter's lock."""

    def __init__(self, url: str, *, standby_s: float = 2.0) -> None:
        self._url = url
        self._standby_s = standby_s
        self._conn: asyncpg.Connection | None = None
        self._last: tuple[str, int] | None = None  # (xid, id) of the last batch handed out
        self.leading = False

    async def pending(self, limit: int) -> list[dict[str, Any]]:
        conn = await self._lead()
        rows = await conn.fetch(_PENDING, limit)
        self._last = (rows[-1]["xid"], int(rows[-1]["ledger_id"])) if rows else None
        return [ledger.meter_event(r) for r in rows]

    async def accepted(self, batch: list[dict[str, Any]]) -> None:
        conn, last = self._conn, self._last
        if conn is None or last is None or conn.is_closed():
            raise ConnectionError("the meter's connection was lost: the batch is sent again")
        await conn.execute(_ACCEPTED, *last)

    async def close(self) -> None:
        """Let go of the lock (with the connection): another instance takes over."""
        conn, self._conn, self.leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            await conn.close()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the locked connection (what an operator would terminate)."""
        return None if self._conn is None else self._conn.get_server_pid()

    async def _lead(self) -> asyncpg.Connection:
        """The connection holding the lock: kept while it lives, else a new one that waits
        for the lock."""
        if self._conn is not None and not self._conn.is_closed() and self.leading:
            return self._conn
        await self.close()
        conn = await schema.connect(self._url)
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK):
                await asyncio.sleep(self._standby_s)
        except BaseException:
            await conn.close()
            raise
        log.info("meter_exporter_leads")
        self._conn, self.leading = conn, True
        return conn
