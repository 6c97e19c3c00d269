"""The only writer: one task that batches every write into one transaction on its own thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

Op = tuple[str, Sequence[Any]]  # one SQL statement and its parameters

log = structlog.get_logger("hubproxy.store")
_BUSY_RETRIES = 20


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


class Writer:
    """Writes queue here from the event loop without waiting. The writer task takes everything
    queued so far as one batch and commits it on a dedicated thread: one thread hop and one
    commit for many writes (group commit). `commit()` lets a caller wait until its write is
    durable, which is what releasing a call's final bytes waits for."""

    def __init__(self, conn: sqlite3.Connection, *, max_batch: int = 1024) -> None:
        self._conn = conn
        self._max_batch = max_batch
        # Each entry is a unit: its writes commit together, in one transaction, or fail together.
        self._queue: deque[tuple[tuple[Op, ...], asyncio.Future[None] | None]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hubproxy-writer")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0  # commits so far, for metrics and tests

    def submit(self, *ops: Op) -> None:
        """Queue writes that belong together; they land with the next batch."""
        self._put(ops, None)

    def commit(self, *ops: Op) -> asyncio.Future[None]:
        """Queue writes that belong together; the future resolves once they are committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(ops, fut)
        return fut

    async def flush(self) -> None:
        """Wait until everything queued before this call is committed."""
        await self.commit(("SELECT 1", ()))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hubproxy-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop the task, the thread and the connection."""
        self._closing = True
        self._wake()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)
        self._conn.close()

    def _put(self, ops: tuple[Op, ...], fut: asyncio.Future[None] | None) -> None:
        if self._closing:
            raise RuntimeError("the writer is closed")
        self._queue.append((ops, fut))
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup = loop.create_future()
                await self._wakeup
                continue
            n = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(n)]
            # The commit runs on the thread even if this task is cancelled meanwhile; shield
            # so that we still learn its outcome and resolve the waiters.
            outcome = await asyncio.shield(loop.run_in_executor(self._executor, self._apply, batch))
            self.batches += 1
            for (_, fut), error in zip(batch, outcome, strict=True):
                if fut is not None and not fut.done():
                    if error is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(error)

    def _apply(self, batch: list[tuple[tuple[Op, ...], Any]]) -> list[Exception | None]:
        """On the writer thread. If the batch fails as a whole, replay its units one by one so
        that one bad unit fails alone instead of taking its neighbours with it."""
        units = [ops for ops, _ in batch]
        ops = [op for unit in units for op in unit]
        for attempt in range(_BUSY_RETRIES):
            try:
                apply(self._conn, ops)
                return [None] * len(units)
            except sqlite3.OperationalError as exc:
                # Locked past busy_timeout (another process holds a long write): wait, retry.
                if "locked" not in str(exc) and "busy" not in str(exc):
                    break
                log.warning("database_busy", attempt=attempt + 1)
                time.sleep(0.05 * (attempt + 1))
            except Exception:  # a constraint, or a value SQLite cannot hold (OverflowError)
                break
        errors: list[Exception | None] = []
        for unit in units:
            try:
                apply(self._conn, unit)
                errors.append(None)
            except Exception as exc:  # this unit only: the writer itself must never die
                statements = [op[0].split("(")[0].strip() for op in unit]
                log.error("write_failed", statements=statements, error=str(exc))
                errors.append(exc)
        return errors
