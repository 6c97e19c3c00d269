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
import time
from collections import deque
from collections.abc import Callable

import structlog

from hubproxy.store.ops import Entry, Journal, Op, apply
from hubproxy.store.queued import Queued, WriterDead

log = structlog.get_logger("hubproxy.store")


class Busy(Exception):
    """Another process holds the write lock; try again shortly."""


class Writer(Queued):
    """Writes queue here without waiting. Everything queued when the writer runs is one batch
    and one commit (group commit). `commit()` lets a caller wait until its writes are durable,
    which is what releasing a call's final bytes waits for; such a write wakes the writer at
    once: inline, in the caller, when the writer is idle and has not committed for
    `group_s` (a lone call pays no hand-off), else with the next group commit. Writes nobody
    waits for linger up to `linger_s`. A write queued with `key` (a call's start) waits up to
    `keyed_s` for a later one that `replaces` it (its finish), and is dropped if that comes:
    a call shorter than that costs one statement, not two. Sources (`add_source`) add the
    writes they have gathered to a batch at most every `linger_s`, in its transaction.

    Watchdog: if the writer fails (a source raises, or its task ends on an error), it is dead:
    every write still waiting fails with WriterDead at once, `commit()`, `submit()` and
    `flush()` raise it from then on, and `died` is set, which the server waits for to exit
    non-zero (systemd restarts it)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        max_batch: int = 1024,
        linger_s: float = 0.005,
        group_s: float = 0.001,
        keyed_s: float = 0.05,
        journal: Journal | None = None,
    ) -> None:
        conn.execute("PRAGMA busy_timeout = 0")  # never block the loop on another's lock
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoint() runs off the loop
        self._conn = conn
        self._journal = journal
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._group_s = group_s
        self._keyed_s = keyed_s
        self._flushing = False  # take everything, keyed writes too (flush, shutdown)
        # Each entry is a unit: its writes commit together, in one transaction, or fail together.
        self._queue: deque[Entry] = deque()
        self._keyed: dict[str, Entry] = {}
        self._sources: list[Callable[[], list[Op]]] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._waited_for = 0  # queued entries someone awaits: the writer must not linger
        self._due = False  # the linger time of the oldest queued entry has passed
        self._owed = False  # a batch went without draining the sources
        self._drained_at = 0.0
        self._committed_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._batch: list[Entry] = []  # taken from the queue, not yet resolved
        self.error: WriterDead | None = None
        self.died = asyncio.Event()  # set once, when the writer fails
        self.batches = 0  # commits so far, for metrics and tests

    def commit(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]:
        """Queue writes that belong together; the future resolves once they are committed.
        With `replaces`, the still-queued writes submitted with that key are dropped: these
        must stand in for them."""
        self._alive()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._replace(replaces)
        idle = self._wakeup is not None and not self._wakeup.done()
        if idle and not self._closing and loop.time() - self._committed_at >= self._group_s:
            self._queue.append(Entry(ops, fut, None))
            self._waited_for += 1
            try:
                committed = self._commit(self._take())
            except Exception as exc:  # a source failed: `fut` fails with the rest
                self._die(exc)
                return fut
            if not committed:
                self._wake()  # busy: the task backs off and retries
            elif self._owed and self._linger is None:  # the sources' turn comes with the timer
                self._linger = loop.call_later(self._linger_s, self._lingered)
            return fut
        self._put(Entry(ops, fut, None))
        return fut

    def commit_queued(self) -> None:
        """Commit what is queued now, in the caller, without waiting for the task: for a
        reader in this process that must see every record its clients saw (a backup, a
        test). Keyed starts and gathered sources go too. A database locked by another process
        leaves the queue to the task."""
        if self.error is not None or not (self._queue or self._sources):
            return
        self._flushing = True
        try:
            self._commit(self._take())
        except Exception as exc:  # a source failed
            self._die(exc)

    async def flush(self) -> None:
        """Wait until everything queued before this call, and what the sources have gathered,
        is committed."""
        started = asyncio.get_running_loop().time()
        self._due = self._flushing = True
        await self.commit()
        self._flushed_at = started

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hubproxy-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop the task and close the connection. A dead writer
        just closes: what it held has failed already."""
        self._closing = True
        self._wake()
        if self._task is not None:
            await self._task
        self._conn.close()

    def _stopped(self) -> None:
        self._waited_for = 0
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._wake()

    def _put(self, entry: Entry) -> None:
        if self._closing:
            raise RuntimeError("the writer is closed")
        self._queue.append(entry)
        if entry.key is not None:
            self._keyed[entry.key] = entry
        if entry.fut is not None:
            self._waited_for += 1
            self._wake()
        elif self._linger is None:
            delay = self._linger_s if entry.key is None else self._keyed_s
            self._linger = asyncio.get_running_loop().call_later(delay, self._lingered)

    def _lingered(self) -> None:
        self._due = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        pause = 0.0
        while self.error is None:
            pending = bool(self._queue) or self._owed
            if not pending and self._closing:
                return
            ready = self._closing or self._due or self._waited_for
            if not pending or not ready:
                if pending and self._linger is None:
                    self._linger = loop.call_later(self._linger_s, self._lingered)
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            if not self._commit(self._take()):
                pause = min(max(pause * 2, 0.002), 0.1)
                log.warning("database_busy", retry_in_s=pause)
                await asyncio.sleep(pause)
                continue
            pause = 0.0
            await asyncio.sleep(0)  # let requests run (and queue more) between batches

    def _take(self) -> list[Entry]:
        """The next batch: what is queued, but keyed writes younger than `keyed_s` (they may
        still be replaced), and what the sources gathered if it is time."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        everything = self._flushing or self._closing
        drain = self._due or everything or now - self._drained_at >= self._linger_s
        self._due = self._flushing = False
        batch = self._batch = []  # the watchdog fails these too if a source raises below
        young: deque[Entry] = deque()
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            if not entry.ops and entry.fut is None:
                continue  # a start its finish replaced: nothing left to write
            if entry.key is None:
                batch.append(entry)
            elif not everything and now - entry.at < self._keyed_s:
                young.append(entry)
            else:
                self._keyed.pop(entry.key, None)
                batch.append(entry)
        full = len(batch) >= self._max_batch and bool(self._queue)
        if young:
            self._queue.extendleft(reversed(young))
            wait = young[0].at + self._keyed_s - now
            self._linger = loop.call_later(max(wait, 0.0), self._lingered)
        if full:
            # Sources gather from writes queued before they drain (a call's rollup is added
            # before its row is queued): drain only once nothing is left behind, so that
            # what they add never commits ahead of the rows it counts.
            drain = False
        if self._sources:
            self._owed = not drain
            if drain:
                self._drained_at = now
                gathered = tuple(op for source in self._sources for op in source())
                if gathered:
                    batch.append(Entry(gathered, None, None))
        return batch

    def _commit(self, batch: list[Entry]) -> bool:
        """Apply a batch and resolve its waiters; False (and all requeued) if the database
        is locked by another process."""
        if not batch:
            return True
        waiting = sum(entry.fut is not None for entry in batch)
        self._waited_for -= waiting
        try:
            outcome = self._apply(batch)
        except Busy:
            self._queue.extendleft(reversed(batch))  # in order, first in line again
            self._batch = []
            self._waited_for += waiting
            return False
        self._batch = []
        self.batches += 1
        if self._journal is not None:
            journaled = sum(entry.journaled for entry in batch)
            if journaled:
                self._journal.committed(journaled)
        self._committed_at = asyncio.get_running_loop().time()
        for entry, error in zip(batch, outcome, strict=True):
            fut = entry.fut
            if fut is not None and not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
        return True

    def _apply(self, batch: list[Entry]) -> list[Exception | None]:
        if self.on_commit is None:
            return self._apply_batch(batch)
        started = time.perf_counter()
        outcome = self._apply_batch(batch)
        self.on_commit(len(batch), time.perf_counter() - started)
        return outcome

    def _apply_batch(self, batch: list[Entry]) -> list[Exception | None]:
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


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _failed(unit: tuple[Op, ...], exc: Exception) -> Exception:
    statements = [op[0].split("(")[0].strip() for op in unit]
    log.error("write_failed", statements=statements, error=str(exc))
    return exc
