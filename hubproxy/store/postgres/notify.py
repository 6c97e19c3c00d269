"""LISTEN for revision bumps: migrations/postgres/0002 makes bump_revision() notify
`hubproxy_revisions` with the revision's name when its transaction commits. A connection of
its own; when it drops, it is opened again with a backoff, and every (re)connection counts as
a change (notifications sent while it was down are lost). The caller's revision poll stays
the fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from hubproxy.store.postgres import schema

log = structlog.get_logger("hubproxy.store")

CHANNEL = "hubproxy_revisions"


class Listener:
    """`run()` keeps a LISTEN open and awaits `on_change()` after each notification (several
    arriving during one call make one more call, not several) and after each connection."""

    def __init__(
        self,
        url: str,
        on_change: Callable[[], Awaitable[object]],
        *,
        first_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        timeout_s: float = 10.0,
        ping_s: float = 15.0,
    ) -> None:
        self._url = url
        self._on_change = on_change
        self._first_s = first_backoff_s
        self._max_s = max_backoff_s
        self._timeout_s = timeout_s
        self._ping_s = ping_s  # a quiet connection is asked a question this often
        self._dirty = asyncio.Event()
        self.connected = asyncio.Event()  # set while the LISTEN is open
        self.server_pid: int | None = None  # the listening backend's pid

    async def run(self) -> None:
        """Until cancelled."""
        delay = self._first_s
        while True:
            try:
                await self._listen()
                delay = self._first_s  # it was up: the next drop starts the backoff again
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    asyncpg.InternalClientError) as exc:  # fmt: skip
                log.warning("listen_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_s)

    async def _listen(self) -> None:
        conn = await schema.connect(self._url, timeout_s=self._timeout_s)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
            self.server_pid = conn.get_server_pid()
            self.connected.set()
            log.info("listening", channel=CHANNEL)
            self._dirty.set()  # catch up on what changed while no one listened
            while not lost.is_set():
                await _first(self._dirty.wait(), lost.wait(), timeout_s=self._ping_s)
                if not self._dirty.is_set() and not lost.is_set():
                    # Quiet: is it still there? A dead peer without a reset shows up here.
                    await conn.fetchval("SELECT 1", timeout=self._timeout_s)
                if self._dirty.is_set():
                    self._dirty.clear()
                    try:
                        await self._on_change()
                    except Exception:
                        log.exception("reload_after_notify_failed")
            log.warning("listen_lost", channel=CHANNEL)
        finally:
            self.connected.clear()
            conn.terminate()

    def _notified(self, *_: object) -> None:
        self._dirty.set()


async def _first(*waits: Awaitable[object], timeout_s: float) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
