"""This instance among the others on one database: its heartbeat, the stale sweep, and failing
the calls of instances gone silent (with a hook for whatever else their death frees).

Each instance writes its heartbeat every `[server] heartbeat_s` (5 s). An instance silent for
`[server] dead_after_s` (30 s) is dead: one of the others (whichever takes the sweep's lock
first) fails its calls left `processing`, removes its row, and calls every `on_dead` hook with
the ids. Its reason starts with "stale: ", so that an instance that was only slow, not dead,
still records its calls' real outcomes when they finish.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import structlog

from hubproxy.store import calls
from hubproxy.store.clock import now_ms
from hubproxy.store.instances import Me, Registry

log = structlog.get_logger("hubproxy.instances")

OnDead = Callable[[list[str]], Awaitable[None]]
OnCount = Callable[[int], None]


class Instance:
    """The rounds `tasks.Tasks.every` runs: `beat` every heartbeat_s, `reap` as often, `sweep`
    every `[database] sweep_interval_s`. `on_dead` is the seam for others (credit leases):
    append an async callable; it gets the ids of the instances just found dead, once, on the
    one instance that failed their calls. A hook that raises is logged; the others still run.
    `on_count` hooks get the number of live instances (this one included) after each
    heartbeat: the rate limits' share (limits/rates.py `spread`)."""

    def __init__(
        self,
        registry: Registry,
        instance_id: str,
        *,
        dead_after_s: float,
        stale_after_s: float,
    ) -> None:
        self.me = Me(instance_id, socket.gethostname(), os.getpid(), now_ms())
        self.on_dead: list[OnDead] = []
        self.on_count: list[OnCount] = []
        self._registry = registry
        self._dead_after_s = dead_after_s
        self._stale_after_s = stale_after_s

    @property
    def id(self) -> str:
        return self.me.id

    async def start(self) -> None:
        """This instance's heartbeat row, before it serves."""
        await self._registry.register(self.me)

    async def beat(self) -> None:
        if not await self._registry.beat(self.me):
            log.warning(
                "instance_presumed_dead",
                instance=self.me.id,
                why="the heartbeat row was gone: others failed this instance's calls",
            )
        await self.count()

    async def count(self) -> None:
        """Tell the `on_count` hooks how many instances are live (at start, then with each
        heartbeat). An instance stopped cleanly counts until its heartbeat is dead_after_s
        old: meanwhile the others admit a smaller share than they could, never a larger."""
        if self.on_count:
            live = max(1, await self._registry.live(int(self._dead_after_s * 1000)))
            for hook in self.on_count:
                hook(live)

    async def sweep(self) -> None:
        """Calls still `processing` long after they started lost their request."""
        reason = f"{calls.STALE}still processing after {self._stale_after_s:g} s"
        cutoff = now_ms() - int(self._stale_after_s * 1000)
        await self._registry.sweep(calls.sweep_op(cutoff, reason))

    async def reap(self) -> list[str]:
        """Fail the calls of instances silent for dead_after_s; returns their ids."""
        reason = f"{calls.STALE}instance went silent (no heartbeat for {self._dead_after_s:g} s)"
        dead = await self._registry.reap(self.me.id, int(self._dead_after_s * 1000), reason)
        if not dead:
            return []
        log.warning("instances_dead", instances=dead, by=self.me.id)
        for hook in self.on_dead:
            try:
                await hook(dead)
            except Exception:
                log.exception("on_dead_failed", hook=repr(hook), instances=dead)
        return dead
