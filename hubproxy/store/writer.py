"""The only writer: one task that batches every write into one transaction.

A commit in WAL mode with synchronous=NORMAL is an append to the WAL file, with no fsync: tens
of microseconds. So the writer commits on the event loop itself, which is cheaper than any
hand-off to a thread, and never waits there: its connection has no busy timeout (a lock held by
another process, such as the CLI, is retried after an asynchronous pause), and it never
checkpoints (checkpoint() does that on a thread, off the loop).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import structlog

Op = tuple[str, Sequence[Any]]  # one SQL statement and its parameters


class Entry:
    """A unit of writes that commit together, who waits for it, and its key (if a later
    entry may replace it while it is still queued)."""

    __slots__ = ("fut", "key", "ops")

    def __init__(
        self, ops: tuple[Op, ...], fut: asyncio.Future[None] | None, key: str | None
    ) -> None:
        self.ops = ops
        self.fut = fut
        self.key = key


log = structlog.get_logger("hubproxy.store")


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


class Busy(Exception):
    """Another process holds the write lock; try again shortly."""


class Writer:
    """Writes queue here without waiting. Everything queued when the writer runs is one batch
    and one commit (group commit). `commit()` lets a caller wait until its writes are durable,
    which is what releasing a call's final bytes waits for; such a write wakes the writer at
    once. Writes nobody waits for linger up to `linger_s`, so that a short call's start and
    finish usually share one commit, or one statement: a write queued with `key` is dropped
    if a later one `replaces` it before it was taken. Sources (`add_source`) contribute the
    writes they have gathered to every batch, in its transaction."""

    def __init__(
        self, conn: sqlite3.Connection, *, max_batch: int = 1024, linger_s: float = 0.005
    ) -> None:
        conn.execute("PRAGMA busy_timeout = 0")  # never block the loop on another's lock
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoint() runs off the loop
        self._conn = conn
        self._max_batch = max_batch
        self._linger_s = linger_s
        # Each entry is a unit: its writes commit together, in one transaction, or fail together.
        self._queue: deque[Entry] = deque()
        self._keyed: dict[str, Entry] = {}
        self._sources: list[Callable[[], list[Op]]] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._waited_for = 0  # queued entries someone awaits: the writer must not linger
        self._due = False  # the linger time of the oldest queued entry has passed
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0  # commits so far, for metrics and tests

    def submit(self, *ops: Op, key: str | None = None) -> None:
        """Queue writes that belong together; they land with the next batch."""
        self._put(Entry(ops, None, key))

    def commit(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]:
        """Queue writes that belong together; the future resolves once they are committed.
        With `replaces`, the still-queued writes submitted with that key are dropped: these
        must stand in for them."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if replaces is not None and (earlier := self._keyed.pop(replaces, None)) is not None:
            earlier.ops = ()
        self._put(Entry(ops, fut, None))
        return fut

    def add_source(self, drain: Callable[[], list[Op]]) -> None:
        """`drain()` is called for every batch; its writes join the batch's transaction."""
        self._sources.append(drain)

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        await self.commit()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hubproxy-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop the task and close the connection."""
        self._closing = True
        self._wake()
        if self._task is not None:
            await self._task
        self._conn.close()

    def _put(self, entry: Entry) -> None:
        if self._closing:
            raise RuntimeError("the writer is closed")
        self._queue.append(entry)
        if entry.key is not None:
            self._keyed[entry.key] = entry
        fut = entry.fut
        if fut is not None:
            self._waited_for += 1
        if fut is not None or len(self._queue) >= self._max_batch:
            self._wake()
        elif self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(self._linger_s, self._lingered)

    def _lingered(self) -> None:
        self._due = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pause = 0.0
        while True:
            if not self._queue and self._closing:
                return
            ready = (
                self._closing
                or self._due
                or self._waited_for
                or len(self._queue) >= self._max_batch
            )
            if not self._queue or not ready:
                if self._queue and self._linger is None:
                    self._linger = loop.call_later(self._linger_s, self._lingered)
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            self._due = False
            n = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(n)]
            for entry in batch:
                if entry.key is not None:
                    self._keyed.pop(entry.key, None)
            gathered = tuple(op for drain in self._sources for op in drain())
            if gathered:
                batch.append(Entry(gathered, None, None))
            self._waited_for -= sum(entry.fut is not None for entry in batch)
            try:
                outcome = self._apply(batch)
            except Busy:
                self._queue.extendleft(reversed(batch))  # in order, first in line again
                self._waited_for += sum(entry.fut is not None for entry in batch)
                pause = min(max(pause * 2, 0.002), 0.1)
                log.warning("database_busy", retry_in_s=pause)
                await asyncio.sleep(pause)
                continue
            pause = 0.0
            self.batches += 1
            for entry, error in zip(batch, outcome, strict=True):
                fut = entry.fut
                if fut is not None and not fut.done():
                    if error is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(error)
            await asyncio.sleep(0)  # let requests run (and queue more) between batches

    def _apply(self, batch: list[Entry]) -> list[Exception | None]:
        """Commit the batch; if it fails as a whole, replay its units one by one so that one
        bad unit fails alone instead of taking its neighbours with it."""
        units = [entry.ops for entry in batch]
        try:
            apply(self._conn, [op for unit in units for op in unit])
            return [None] * len(units)
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                raise Busy from exc
        except Exception:  # a constraint, or a value SQLite cannot hold (OverflowError)
            pass
        errors: list[Exception | None] = []
        for unit in units:
            try:
                apply(self._conn, unit)
                errors.append(None)
            except sqlite3.OperationalError as exc:
                if _locked(exc):
                    raise Busy from exc
                errors.append(_failed(unit, exc))
            except Exception as exc:  # this unit only: the writer itself must never die
                errors.append(_failed(unit, exc))
        return errors


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL back into the database file (PASSIVE: never waits for readers or the
    writer). Blocking: run it on a thread, with a connection of its own."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _failed(unit: tuple[Op, ...], exc: Exception) -> Exception:
    statements = [op[0].split("(")[0].strip() for op in unit]
    log.error("write_failed", statements=statements, error=str(exc))
    return exc
