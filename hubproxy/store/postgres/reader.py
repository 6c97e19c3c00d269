"""The PostgreSQL reader: store/reader.py's interface over an asyncpg pool, so the store's
read functions, the admin API and the dashboard run unchanged on both backends.

Statements keep SQLite's `?` placeholders (translated by sql.to_postgres). Outside a
transaction each statement takes any connection of the pool. `BEGIN` pins one connection to
the task that said it (REPEATABLE READ, read only: the reads until `COMMIT` see one snapshot,
which is what they bracket it for), so tasks reading at once never share a transaction.
NUMERIC values that are whole (sum() of a BIGINT is NUMERIC) come back as int, as they do
from SQLite; money is never fractional.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any

import asyncpg

from hubproxy.store.postgres.sql import to_postgres


def _numeric(text: str) -> int | Decimal:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else value


async def setup_connection(conn: asyncpg.Connection) -> None:
    """Every connection the hub opens decodes whole NUMERICs as int."""
    await conn.set_type_codec(
        "numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text"
    )


async def create_pool(url: str, *, max_size: int = 4, timeout_s: float = 10.0) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url, min_size=1, max_size=max_size, timeout=timeout_s, init=setup_connection
    )
    return pool


class PgCursor:
    """The rows of one statement (asyncpg Records: by index, by name, keys())."""

    def __init__(self, rows: list[asyncpg.Record]) -> None:
        self._rows = rows
        self._at = 0

    async def fetchall(self) -> list[asyncpg.Record]:
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    async def fetchone(self) -> asyncpg.Record | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    async def __aiter__(self) -> AsyncIterator[asyncpg.Record]:
        while (row := await self.fetchone()) is not None:
            yield row


class _Execution:
    def __init__(self, reader: PgReader, sql: str, params: Sequence[Any]) -> None:
        self._run = reader._run(sql, params)

    def __await__(self) -> Generator[Any, None, PgCursor]:
        return self._run.__await__()

    async def __aenter__(self) -> PgCursor:
        return await self._run

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class PgReader:
    """See the module's docstring. `pool` is the hub's pool for other read-side work too."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._pinned: dict[asyncio.Task[Any], tuple[Any, Any]] = {}

    def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> _Execution:
        return _Execution(self, sql, tuple(parameters or ()))

    async def close(self) -> None:
        for conn, tx in self._pinned.values():
            await tx.rollback()
            await self.pool.release(conn)
        self._pinned.clear()
        await self.pool.close()

    async def _run(self, sql: str, params: Sequence[Any]) -> PgCursor:
        task = asyncio.current_task()
        assert task is not None
        word = sql.strip().upper()
        if word in ("BEGIN", "BEGIN DEFERRED"):
            if task in self._pinned:
                raise RuntimeError("a transaction is open already in this task")
            conn = await self.pool.acquire()
            tx = conn.transaction(isolation="repeatable_read", readonly=True)
            try:
                await tx.start()
            except BaseException:
                await self.pool.release(conn)
                raise
            self._pinned[task] = (conn, tx)
            return PgCursor([])
        if word in ("COMMIT", "ROLLBACK"):
            pinned = self._pinned.pop(task, None)
            if pinned is not None:
                conn, tx = pinned
                try:
                    await (tx.commit() if word == "COMMIT" else tx.rollback())
                finally:
                    await self.pool.release(conn)
            return PgCursor([])
        statement = to_postgres(sql)
        pinned = self._pinned.get(task)
        if pinned is not None:
            return PgCursor(await pinned[0].fetch(statement, *params))
        return PgCursor(await self.pool.fetch(statement, *params))
