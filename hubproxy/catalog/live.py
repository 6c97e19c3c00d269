"""The running server's catalogue: the current snapshot, swapped whole on each reload, the
model health, and the credential state reported back to the database.

`reload()` is the Follower's handler for the "catalog" revision (every change made by the
admin API or the CLI bumps it), so a change applies within the follow interval. Readers take
`live.current` once per call and keep that snapshot for the whole call: a provider removed
meanwhile finishes the streams it has in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from hubproxy.catalog.credentials import Clock, Credential
from hubproxy.catalog.health import Health
from hubproxy.catalog.sealing import MasterKey
from hubproxy.catalog.snapshot import Catalog, build
from hubproxy.config import Settings
from hubproxy.store import catalog as store
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader


class LiveCatalog:
    def __init__(
        self,
        settings: Settings,
        key: MasterKey | None,
        *,
        report: Callable[[Op], None] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.key = key
        self.health = Health()
        self.current = Catalog()
        self.report = report
        self._clock = clock
        self._lock = asyncio.Lock()
        self.reloads = 0

    async def load(self, reader: Reader, *, strict: bool = False) -> Catalog:
        """Read the rows and swap in a new snapshot. `strict` at start: a credential that
        does not open stops the server (SealError), naming which and why."""
        async with self._lock:
            rows = await store.read_async(reader)
            self.current = build(
                rows, self.settings.providers, self.key, previous=self.current,
                strict=strict, clock=self._clock, on_change=self._changed,
            )  # fmt: skip
            self.reloads += 1
            return self.current

    async def reload(self, reader: Reader) -> None:
        await self.load(reader)

    def _changed(self, cred: Credential) -> None:
        """A state change, written (without waiting) for `credentials list` to show."""
        if self.report is None or cred.id.startswith("config:"):
            return
        now = self._clock()
        self.report(
            store.report_state(
                cred.id,
                state=cred.state,
                last_error=cred.last_error,
                resting_until=int(cred.until * 1000) if cred.until > now else None,
                last_used_at=None if cred.last_used is None else int(cred.last_used * 1000),
            )
        )
