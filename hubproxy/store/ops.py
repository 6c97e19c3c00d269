"""Units of writes: an Op (one statement and its parameters), the queued Entry the writers
batch, the Journal they make writes durable in, and applying a unit in one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
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
