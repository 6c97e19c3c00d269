"""A blocking PostgreSQL connection with the part of sqlite3.Connection the command line uses:
`execute(sql, params)` (SQLite's `?` placeholders) giving a cursor with `fetchone()`,
`fetchall()` and iteration, rows by index or column name with `keys()`, and the statements
`BEGIN [IMMEDIATE]`, `COMMIT`, `ROLLBACK`; a broken constraint raises
sqlite3.IntegrityError, as SQLite's would. So `ops.apply` and the store's blocking reads serve
the CLI on both backends.

asyncpg is asynchronous: the connection lives on an event loop of its own, in a thread of
its own, and each statement waits for its answer (bounded). It works from code that runs
inside another event loop too (a test's).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

import asyncpg

from hubproxy.store.postgres.reader import setup_connection
from hubproxy.store.postgres.sql import to_postgres

_T = TypeVar("_T")
TIMEOUT_S = 30.0
_TRANSACTION = {"BEGIN": "BEGIN", "BEGIN IMMEDIATE": "BEGIN", "COMMIT": "COMMIT",
                "ROLLBACK": "ROLLBACK"}  # fmt: skip


class BlockingCursor:
    def __init__(self, rows: list[asyncpg.Record]) -> None:
        self._rows = rows
        self._at = 0

    def fetchone(self) -> asyncpg.Record | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[asyncpg.Record]:
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[asyncpg.Record]:
        return iter(self.fetchall())


class BlockingConnection:
    """See the module's docstring. Not for the server: its reads and writes are async."""

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hubproxy-pg-blocking", daemon=True
        )
        self._thread.start()
        try:
            self._conn: asyncpg.Connection = self._wait(asyncpg.connect(url, timeout=timeout_s))
            self._wait(setup_connection(self._conn))
        except BaseException:
            _shutdown(self._loop, self._thread, None, timeout_s)
            raise
        # Closed by close(), or when it is dropped unclosed (a CLI command returns without
        # closing what it opened, as it may with sqlite3): no thread or connection outlives it.
        self._finalizer = weakref.finalize(
            self, _shutdown, self._loop, self._thread, self._conn, timeout_s
        )

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> BlockingCursor:
        word = " ".join(sql.split()).upper()
        if word in _TRANSACTION:
            self._wait(self._conn.execute(_TRANSACTION[word]))
            return BlockingCursor([])
        try:
            rows = self._wait(self._conn.fetch(to_postgres(sql), *parameters))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise sqlite3.IntegrityError(str(exc)) from exc
        return BlockingCursor(rows)

    def run(self, work: Callable[[asyncpg.Connection], Coroutine[Any, Any, _T]]) -> _T:
        """Run `work(connection)` (schema.migrate, say) and wait for it."""
        return self._wait(work(self._conn))

    def close(self) -> None:
        self._finalizer()

    def _wait(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout_s)


def _shutdown(
    loop: asyncio.AbstractEventLoop,
    thread: threading.Thread,
    conn: asyncpg.Connection | None,
    timeout_s: float,
) -> None:
    try:
        if conn is not None:
            asyncio.run_coroutine_threadsafe(conn.close(timeout=timeout_s), loop).result(timeout_s)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        loop.close()
