"""The PostgreSQL writer: the SQLite writer's interface (store/writer.py) on one asyncpg
connection. Everything queued when the task runs is one batch and one transaction; runs of the
same statement in a batch go as one `executemany`. If a batch fails as a whole, its units are
replayed one by one, each in its own transaction, so that one bad unit fails alone.

What differs from SQLite: a commit is a network round trip, so nothing commits inline in the
caller: `commit()` wakes the task, and `commit_queued()` asks for the next batch to take
everything (await `flush()` to see it committed). A serialization failure or deadlock is
retried after a pause, like SQLite's lock; a lost connection kills the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from hubproxy.store import calls, ledger
from hubproxy.store import journal as journals
from hubproxy.store.ops import Entry, Journal, Op
from hubproxy.store.postgres import leases
from hubproxy.store.postgres.sql import to_postgres
from hubproxy.store.queued import Queued, WriterDead

log = structlog.get_logger("hubproxy.store")

_RETRY = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
_LOST = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)


class _Retry(Exception):
    """The batch hit a serialization failure or deadlock; it goes again shortly."""


# A settled call's statements (its row, its lease consumption, its debit): each touches its
# own call's rows, or adds to a balance or a lease, so the same statement of different calls
# may run together. Any other statement keeps its place between them.
_GROUPED = frozenset((calls.START, calls.FINISH, leases.CONSUME, ledger.DEBIT))


def runs(units: Sequence[Sequence[Op]]) -> list[tuple[str, list[Sequence[Any]]]]:
    """A batch's statements as runs of one statement, each one executemany. Between two other
    statements, the settled calls' statements are grouped by statement, in the order each
    first came, when every unit has them in that order (then each unit's own order stands);
    else, and for every other statement, runs are what comes consecutively."""
    ops = [op for unit in units for op in unit]
    rank: dict[str, int] = {}
    for sql, _ in ops:
        if sql in _GROUPED:
            rank.setdefault(sql, len(rank))
    for unit in units:
        seen = [rank[sql] for sql, _ in unit if sql in rank]
        if seen != sorted(seen):
            return _consecutive(ops)
    out: list[tuple[str, list[Sequence[Any]]]] = []
    group: dict[str, list[Sequence[Any]]] = {}
    for sql, params in ops:
        if sql in rank:
            group.setdefault(sql, []).append(params)
            continue
        out += sorted(group.items(), key=lambda run: rank[run[0]])
        group = {}
        out += _consecutive([(sql, params)])
    out += sorted(group.items(), key=lambda run: rank[run[0]])
    return _merged(out)


def _consecutive(ops: Sequence[Op]) -> list[tuple[str, list[Sequence[Any]]]]:
    return _merged([(sql, [params]) for sql, params in ops])


def _merged(runs: list[tuple[str, list[Sequence[Any]]]]) -> list[tuple[str, list[Sequence[Any]]]]:
    out: list[tuple[str, list[Sequence[Any]]]] = []
    for sql, params in runs:
        if out and out[-1][0] == sql:
            out[-1][1].extend(params)
        else:
            out.append((sql, list(params)))
    return out


async def apply(conn: asyncpg.Connection, units: Sequence[Sequence[Op]]) -> None:
    """Run the units' statements in one transaction: all of them, or none; see `runs`."""
    async with conn.transaction():
        for sql, params in runs(units):
            statement = to_postgres(sql)
            if len(params) == 1:
                await conn.execute(statement, *params[0])
            else:
                await conn.executemany(statement, [tuple(p) for p in params])


async def replay(conn: asyncpg.Connection, path: Path) -> int:
    """store/journal.replay, into PostgreSQL: each unit in its own transaction; one that was
    committed before the crash fails on its unique debit (or finds its row finished) and
    changes nothing."""
    applied = 0
    for ops in journals.units(path):
        try:
            await apply(conn, [ops])
            applied += 1
        except asyncpg.IntegrityConstraintViolationError:
            pass  # committed before the crash: its debit is there already
    journals.replayed(path, applied)
    return applied


class PgWriter(Queued):
    """See store/writer.py's Writer for the contract; the arguments mean the same."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        *,
        max_batch: int = 1024,
        linger_s: float = 0.005,
        keyed_s: float = 0.05,
        journal: Journal | None = None,
    ) -> None:
        self._conn = conn
        self._journal = journal
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._keyed_s = keyed_s
        self._queue: deque[Entry] = deque()
        self._keyed: dict[str, Entry] = {}
        self._sources: list[Callable[[], list[Op]]] = []
        self._wakeup = asyncio.Event()
        self._linger: asyncio.TimerHandle | None = None
        self._everything = False  # the next batch takes keyed writes too (flush, shutdown)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._batch: list[Entry] = []
        self.error: WriterDead | None = None
        self.died = asyncio.Event()
        self.batches = 0

    # The interface ---------------------------------------------------------------------------

    def commit(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]:
        self._alive()
        self._replace(replaces)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(Entry(ops, fut, None))
        return fut

    def commit_queued(self) -> None:
        if self.error is None:
            self._everything = True
            self._wakeup.set()

    async def flush(self) -> None:
        started = asyncio.get_running_loop().time()
        self._everything = True
        await self.commit()
        self._flushed_at = started

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hubproxy-pgwriter")

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await self._conn.close()

    # Inside ----------------------------------------------------------------------------------

    def _put(self, entry: Entry) -> None:
        if self._closing:
            raise RuntimeError("the writer is closed")
        self._queue.append(entry)
        if entry.key is not None:
            self._keyed[entry.key] = entry
        if entry.fut is not None:
            self._wakeup.set()
        elif self._linger is None:
            delay = self._linger_s if entry.key is None else self._keyed_s
            self._linger = asyncio.get_running_loop().call_later(delay, self._wakeup.set)

    async def _loop(self) -> None:
        pause = 0.0
        while self.error is None:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._linger is not None:
                self._linger.cancel()
                self._linger = None
            closing = self._closing
            batch = self._take(everything=closing or self._everything)
            if batch:
                try:
                    await self._commit(batch)
                    pause = 0.0
                except _Retry:
                    pause = min(max(pause * 2, 0.002), 0.1)
                    log.warning("database_busy", retry_in_s=pause)
                    await asyncio.sleep(pause)
                    self._wakeup.set()
                    continue
            if closing and not self._queue:
                return
            if self._queue and (closing or any(e.fut is not None for e in self._queue)):
                self._wakeup.set()  # more than one batch's worth, or writes arrived meanwhile
            elif self._queue and self._linger is None:
                self._linger = asyncio.get_running_loop().call_later(
                    self._linger_s, self._wakeup.set
                )

    def _take(self, *, everything: bool) -> list[Entry]:
        """What is queued, but keyed writes younger than `keyed_s`, then what the sources
        gathered (once nothing is left behind: what they add counts rows queued before)."""
        self._everything = False
        now = asyncio.get_running_loop().time()
        batch = self._batch = []
        young: deque[Entry] = deque()
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            if not entry.ops and entry.fut is None:
                continue
            if entry.key is not None and not everything and now - entry.at < self._keyed_s:
                young.append(entry)
                continue
            if entry.key is not None:
                self._keyed.pop(entry.key, None)
            batch.append(entry)
        left_behind = bool(self._queue)
        self._everything = everything and left_behind  # a flush waits behind what is left
        if young:  # come back when the oldest may no longer be replaced
            self._queue.extendleft(reversed(young))
            wait = max(young[0].at + self._keyed_s - now, 0.0)
            self._linger = asyncio.get_running_loop().call_later(wait, self._wakeup.set)
        if not left_behind:
            gathered = tuple(op for source in self._sources for op in source())
            if gathered:
                batch.append(Entry(gathered, None, None))
        return batch

    async def _commit(self, batch: list[Entry]) -> None:
        started = time.perf_counter()
        outcome = await self._apply_batch(batch)
        if self.on_commit is not None:
            self.on_commit(len(batch), time.perf_counter() - started)
        self._batch = []
        self.batches += 1
        if self._journal is not None:
            journaled = sum(entry.journaled for entry in batch)
            if journaled:
                self._journal.committed(journaled)
        for entry, error in zip(batch, outcome, strict=True):
            if entry.fut is not None and not entry.fut.done():
                if error is None:
                    entry.fut.set_result(None)
                else:
                    entry.fut.set_exception(error)

    async def _apply_batch(self, batch: list[Entry]) -> list[Exception | None]:
        units = [entry.ops for entry in batch]
        try:
            await apply(self._conn, units)
            return [None] * len(units)
        except _RETRY as exc:
            self._queue.extendleft(reversed(batch))
            self._batch = []
            raise _Retry from exc
        except _LOST:
            raise  # the watchdog: every waiting write fails, and the server exits
        except Exception:  # a constraint, a bad value: find the unit it belongs to
            pass
        errors: list[Exception | None] = []
        for unit in units:
            try:
                await apply(self._conn, [unit])
                errors.append(None)
            except _LOST:
                raise
            except Exception as exc:  # this unit only (a retryable error fails it too)
                errors.append(_failed(unit, exc))
        return errors


def _failed(unit: tuple[Op, ...], exc: Exception) -> Exception:
    """The error a failed unit's waiter gets: a broken constraint as sqlite3.IntegrityError,
    what the SQLite writer raises, so that callers (a 409 from the admin API) catch one."""
    statements = [op[0].split("(")[0].strip() for op in unit]
    log.error("write_failed", statements=statements, error=str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        conflict = sqlite3.IntegrityError(str(exc))
        conflict.__cause__ = exc
        return conflict
    return exc
