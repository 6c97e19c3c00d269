"""Units of writes: an Op (one statement and its parameters), the queued Entry the writers
batch, the Journal they make writes durable in, and applying a unit in one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Op = tuple[str, Sequence[Any]]  # one SQL statement and its parameters


class Entry:
    """A unit of writes that commit together, who waits for it, and its key (if a later
    entry may replace it while it is still queued)."""

    __slots__ = ("at", "fut", "journaled", "key", "ops")

    def __init__(
        self,
        ops: tuple[Op, ...],
        fut: asyncio.Future[None] | None,
        key: str | None,
        at: float = 0.0,
        journaled: bool = False,
    ) -> None:
        self.ops = ops
        self.fut = fut
        self.key = key
        self.at = at  # when it was queued (loop time), for entries that may be replaced
        self.journaled = journaled  # durable in the journal already, until it commits


class Journal(Protocol):
    """Where `Writer.record` makes writes durable before they commit (store/journal.py)."""

    def append(self, ops: Sequence[Op]) -> None: ...

    def committed(self, units: int) -> None: ...


def apply(conn: sqlite3.Connection, ops: Sequence[Op]) -> None:
    """Run `ops` in one transaction: all of them, or none. Used by the writer and the CLI."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in ops:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL back into the database file (PASSIVE: never waits for readers or the
    writer). Blocking: run it on a thread, with a connection of its own."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


class StoreWriter(Protocol):
    """What the rest of the hub asks of the one writer, whichever backend: store/writer.py's
    Writer (SQLite) and store/postgres/writer.py's PgWriter. Writer's docstrings say what
    each method promises."""

    error: Any  # a WriterDead once the writer has failed, else None
    died: asyncio.Event
    batches: int
    on_commit: Callable[[int, float], None] | None

    def submit(self, *ops: Op, key: str | None = None) -> None: ...
    def commit(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]: ...
    def record(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]: ...
    def commit_queued(self) -> None: ...
    def add_source(self, drain: Callable[[], list[Op]]) -> None: ...
    async def flush(self) -> None: ...
    async def flushed_within(self, max_age_s: float) -> None: ...
    def start(self) -> None: ...
    async def close(self) -> None: ...
    @property
    def depth(self) -> int: ...
    @property
    def alive(self) -> bool: ...
