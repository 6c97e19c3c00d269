"""Background work: a supervisor that keeps, restarts (with backoff) and stops every task, and
the tasks."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from hubproxy.store import db, ops, responses
from hubproxy.store.ops import StoreWriter

log = structlog.get_logger("hubproxy.tasks")


Work = Callable[[], Awaitable[None]]


async def supervise(name: str, work: Work, *, first_s: float = 1.0, max_s: float = 60.0) -> None:
    """Run `work()` until it returns. When it raises, log it and run it again after a pause
    that doubles with each failure in a row, from `first_s` up to `max_s`; a run that lasted
    `max_s` or more starts the count again. Cancellation stops it."""
    loop = asyncio.get_running_loop()
    delay = first_s
    while True:
        started = loop.time()
        try:
            await work()
            return
        except Exception:
            if loop.time() - started >= max_s:
                delay = first_s  # it ran well for a while: a new failure, not a streak
            log.exception("task_failed", task=name, retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_s)


class Tasks:
    """Background work, supervised: each task is kept here until it ends or is stopped, work
    that fails is logged and restarted with exponential backoff, and stop() ends them all on
    shutdown. Nothing is fire-and-forget."""

    def __init__(self, *, first_backoff_s: float = 1.0, max_backoff_s: float = 60.0) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._first_s = first_backoff_s
        self._max_s = max_backoff_s

    def spawn(self, name: str, work: Work | Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `work()` under supervise() (restarted when it fails). A coroutine object can
        run only once: it is kept, and its failure logged, but it cannot be restarted."""
        if not asyncio.iscoroutine(work):
            work = supervise(name, work, first_s=self._first_s, max_s=self._max_s)
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def every(self, name: str, seconds: float, fn: Callable[[], Awaitable[object]]) -> None:
        """Run `fn` every `seconds`; a failure is logged and the next round still runs."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await fn()
                except Exception:
                    log.exception("task_failed", task=name)

        self.spawn(name, loop)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task_died", task=task.get_name(), error=repr(task.exception()))


def prune_responses(writer: StoreWriter, keep_days: int) -> Callable[[], Awaitable[None]]:
    """Stored Responses API answers older than `keep_days` go."""

    async def run() -> None:
        await writer.commit(responses.prune(keep_days))

    return run


class Checkpointer:
    """The writer never checkpoints on the loop: this copies the WAL back, on a thread, with a
    connection of its own. A checkpoint under way is waited for, never abandoned: closing a
    connection while its thread still uses it would crash the process."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._running: asyncio.Future[None] | None = None

    async def __call__(self) -> None:
        self._running = asyncio.ensure_future(asyncio.to_thread(ops.checkpoint, self._conn))
        await asyncio.shield(self._running)

    async def close(self) -> None:
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        self._conn.close()


Handler = Callable[[], Awaitable[None]]


class Follower:
    """Keeps in-memory state in step with the database by its revision counters: a key, a rate
    or a ledger row written by another process (the CLI) bumps one, and the handler of that
    name reloads. Polled, and also asked on an unknown key, so that a key created a moment ago
    works at once. Refreshes are coalesced and spaced: a flood of bad keys costs about one
    revision read per `min_gap_s`."""

    def __init__(self, reader: Any, handlers: dict[str, Handler], min_gap_s: float = 0.05) -> None:
        self._reader = reader
        self._handlers = handlers
        self._seen: dict[str, int] = {}
        self._loads: dict[str, int] = {}  # how many times each handler has run
        self._min_gap_s = min_gap_s
        self._last = 0.0
        self._running: asyncio.Future[set[str]] | None = None

    async def __call__(self) -> None:
        await self.refresh()

    def add(self, name: str, handler: Handler) -> None:
        """Also reload `handler` when the revision `name` moves (from the next refresh)."""
        self._handlers[name] = handler

    async def refresh(self) -> set[str]:
        """Reload what changed; returns the names of the revisions that moved."""
        if self._running is not None and not self._running.done():
            return await asyncio.shield(self._running)
        loop = asyncio.get_running_loop()
        running = self._running = loop.create_future()
        try:
            changed = await self._reload()
        except BaseException as exc:
            running.set_exception(exc)
            running.exception()  # retrieved: a failed reload is the caller's to report
            raise
        running.set_result(changed)
        self._last = loop.time()
        return changed

    async def refresh_after(self) -> set[str]:
        """A refresh that starts after this call, what a notification of a committed change
        asks for: a reload under way may have read the revisions before that commit, so it
        is waited for (its outcome is its caller's), not joined."""
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait([running])
        return await self.refresh()

    async def on_unknown_key(self) -> bool:
        """Did the keys change? Within `min_gap_s` of the last check the caller waits for the
        next one rather than being refused, which also slows anyone guessing keys."""
        loads = self._loads.get("auth", 0)  # what the caller's failed lookup saw
        wait = self._min_gap_s - (asyncio.get_running_loop().time() - self._last)
        if wait > 0:
            await asyncio.sleep(wait)
            if self._loads.get("auth", 0) != loads:
                return True  # the keys were reloaded meanwhile (a NOTIFY, the poll)
        running = self._running
        # A reload under way may have read the revisions before this key was written: if it
        # finds no new keys, look again with one that starts after the request.
        if running is not None and not running.done() and "auth" in await asyncio.shield(running):
            return True
        return "auth" in await self.refresh()

    async def _reload(self) -> set[str]:
        changed = set()
        for name, value in (await db.revisions(self._reader)).items():
            if name in self._handlers and self._seen.get(name) != value:
                await self._handlers[name]()
                self._seen[name] = value
                self._loads[name] = self._loads.get(name, 0) + 1
                changed.add(name)
        if changed:
            log.info("reloaded", what=sorted(changed))
        return changed
