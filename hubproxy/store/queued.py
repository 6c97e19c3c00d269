"""What both writers share (store/writer.py's SQLite one, store/postgres/writer.py's): the
queue of units and its keyed writes, the journal, the sources, the watchdog, shared flushes."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import structlog

from hubproxy.store.ops import Entry, Journal, Op

log = structlog.get_logger("hubproxy.store")


class WriterDead(RuntimeError):
    """The writer stopped on an error it cannot recover from: nothing more will be committed."""


class Queued:
    """What both writers (SQLite's below, PostgreSQL's in store/postgres/writer.py) share: the
    queue of units (Entry) with keyed writes a later one replaces, the journal, the sources,
    the watchdog's failing of every waiting write, and flushes that callers share. Each writer
    sets these attributes up and says how a unit is queued (`_put`, `commit`) and committed.
    A writer's flush() sets `_flushed_at` to the loop time it started once it has finished."""

    _queue: deque[Entry]  # each entry a unit: its writes commit together, or fail together
    _keyed: dict[str, Entry]
    _sources: list[Callable[[], list[Op]]]
    _journal: Journal | None
    _batch: list[Entry]  # taken from the queue, not yet resolved
    _closing: bool
    _task: asyncio.Task[None] | None
    error: WriterDead | None
    died: asyncio.Event  # set once, when the writer fails
    _flushed_at: float | None = None  # loop time the last finished flush started
    _sharing: asyncio.Future[None] | None = None  # the flush callers share
    # Told the size and duration (seconds) of every batch committed: the metrics' hook.
    on_commit: Callable[[int, float], None] | None = None

    def commit(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError

    def _put(self, entry: Entry) -> None:
        raise NotImplementedError

    async def _loop(self) -> None:
        """Take batches from the queue and commit them until closed."""
        raise NotImplementedError

    async def _run(self) -> None:
        """The task: the writer's loop, under the watchdog. Whatever ends it early (an error, a
        cancellation) kills the writer, so no write waits forever."""
        try:
            await self._loop()
        except asyncio.CancelledError as exc:
            self._die(exc)
            raise
        except Exception as exc:
            self._die(exc)

    def submit(self, *ops: Op, key: str | None = None) -> None:
        """Queue writes that belong together; they land with the next batch (a keyed one
        only once it is `keyed_s` old, unless replaced before)."""
        self._alive()
        at = asyncio.get_running_loop().time() if key is not None else 0.0
        self._put(Entry(ops, None, key, at))

    def record(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]:
        """Writes that must be durable before the caller goes on (a call's record, before its
        final bytes): with a journal, they are appended to it, which makes them durable, and
        commit with the next group of writes; the future is done at once. Without one, or if
        the journal cannot be written, this is `commit()`."""
        journal = self._journal
        if journal is None or self._closing:
            return self.commit(*ops, replaces=replaces)
        self._alive()
        try:
            journal.append(ops)
        except OSError as exc:
            log.error("journal_write_failed", error=str(exc))
            return self.commit(*ops, replaces=replaces)
        self._replace(replaces)
        self._put(Entry(ops, None, None, journaled=True))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def add_source(self, drain: Callable[[], list[Op]]) -> None:
        """`drain()` is called for every batch; its writes join the batch's transaction."""
        self._sources.append(drain)

    @property
    def depth(self) -> int:
        """Units of writes queued, not yet committed."""
        return len(self._queue)

    @property
    def alive(self) -> bool:
        """The writer's task runs: it has not ended (closed, or died on an error)."""
        return self._task is not None and not self._task.done()

    async def flushed_within(self, max_age_s: float) -> None:
        """Wait until what was queued up to `max_age_s` ago is committed: at once if a flush
        that recent has finished, else with the flush under way, else with a new one. However
        many callers ask, there is at most one flush a `max_age_s` for them, and they share
        it (views polled by many clients must not cost a transaction each)."""
        loop = asyncio.get_running_loop()
        if self._sharing is None or self._sharing.done():
            last = self._flushed_at
            if last is not None and loop.time() - last < max_age_s:
                return
            self._sharing = loop.create_task(self.flush(), name="hubproxy-writer-flush")
            self._sharing.add_done_callback(_retrieved)  # each caller got it, or has gone
        await asyncio.shield(self._sharing)

    def _alive(self) -> None:
        if self.error is not None:
            raise WriterDead(str(self.error)) from self.error.__cause__

    def _replace(self, key: str | None) -> None:
        """The still-queued writes submitted with `key` are dropped: the caller's stand in."""
        if key is not None and (earlier := self._keyed.pop(key, None)) is not None:
            earlier.ops = ()

    def _die(self, exc: BaseException) -> None:
        """Fail every write still waiting (taken, queued or keyed), refuse new ones, and tell
        whoever watches `died`."""
        if self.error is not None:
            return
        log.critical("writer_died", error=repr(exc), exc_info=exc)
        error = WriterDead(f"the database writer failed: {exc!r}; nothing more is recorded")
        error.__cause__ = exc
        self.error = error
        waiting = [*self._batch, *self._queue]
        self._batch, self._queue = [], deque()
        self._keyed.clear()
        self._stopped()
        for entry in waiting:
            if entry.fut is not None and not entry.fut.done():
                entry.fut.set_exception(WriterDead(str(error)))
        self.died.set()

    def _stopped(self) -> None:
        """What else a writer resets when it dies (its timers, its counts)."""


def _retrieved(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
