"""Meter export: settled debits, tailed from the ledger, posted in batches to a webhook.

The ledger is the outbox: the task posts the debits past its cursor and moves the cursor only
once the webhook answered 2xx, so failures (retried with exponential backoff) and restarts
lose nothing. Each event carries its idempotency key (the call id): a receiver that has seen
a key drops the repeat, so a batch retried after a lost answer is harmless.

Where the cursor lives and who may move it is the outbox's: on SQLite (`LedgerOutbox`) the one
process reads through its reader and writes through its writer; on PostgreSQL
(store/postgres/meter.PgOutbox) one instance at a time exports, under an advisory lock, with a
transaction-watermark cursor.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import aiohttp
import orjson
import structlog

from hubproxy.config import MeterSettings
from hubproxy.store import ledger
from hubproxy.store.ops import StoreWriter
from hubproxy.store.reader import Reader
from hubproxy.tasks import supervise

log = structlog.get_logger("hubproxy.meter")

Event = dict[str, Any]


class Outbox(Protocol):
    async def pending(self, limit: int) -> list[Event]:
        """The next events the webhook has not accepted, oldest first (waits, on PostgreSQL,
        until this instance is the exporter)."""
        ...

    async def accepted(self, batch: list[Event]) -> None:
        """The webhook accepted `batch` (the last `pending`): move the cursor past it."""
        ...


class LedgerOutbox:
    """SQLite's: the one process's reader and writer, the cursor a ledger id."""

    def __init__(self, reader: Reader, writer: StoreWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def pending(self, limit: int) -> list[Event]:
        await self._writer.flush()  # debits settled a moment ago count too
        return await ledger.meter_pending(self._reader, limit)

    async def accepted(self, batch: list[Event]) -> None:
        await self._writer.commit(ledger.meter_accepted(int(batch[-1]["ledger_id"])))


class MeterExport:
    def __init__(self, settings: MeterSettings, outbox: Outbox):
        self._settings = settings
        self._outbox = outbox

    async def run(self) -> None:
        """Export until cancelled. Webhook failures are retried here, with backoff; any other
        error (the database, a bug) restarts the export under the task supervisor, also with
        backoff and logged, from the cursor: nothing is lost or skipped."""
        await supervise(
            "meter-export", self._export,
            first_s=self._settings.interval_s, max_s=self._settings.max_backoff_s,
        )  # fmt: skip

    async def _export(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            backoff = self._settings.interval_s
            while True:
                try:
                    full = await self.once(session)
                    backoff = self._settings.interval_s
                    if full:
                        continue  # more are waiting: no pause
                except (aiohttp.ClientError, TimeoutError, MeterRefused) as exc:
                    log.warning("meter_export_failed", error=str(exc), retry_in_s=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._settings.max_backoff_s)
                    continue
                await asyncio.sleep(self._settings.interval_s)

    async def once(self, session: aiohttp.ClientSession) -> bool:
        """Post one batch; True if it was full (so more may be waiting)."""
        batch = await self._outbox.pending(self._settings.batch_size)
        if not batch:
            return False
        async with session.post(
            self._settings.url,
            data=orjson.dumps({"events": batch}),
            headers={"Content-Type": "application/json"},
        ) as resp:
            await resp.read()
            if resp.status >= 300:
                raise MeterRefused(f"webhook answered {resp.status}")
        await self._outbox.accepted(batch)
        log.info("meter_exported", events=len(batch))
        return len(batch) == self._settings.batch_size


class MeterRefused(Exception):
    """The webhook answered, but not with 2xx."""
