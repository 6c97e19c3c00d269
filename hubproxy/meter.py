"""Meter export: settled debits, from the outbox table, posted in batches to a webhook.

Each event carries its idempotency key (the call id): a receiver that has seen a key drops
the repeat, so a batch retried after a lost answer is harmless. Events leave the outbox only
once the webhook answered 2xx; failures back off exponentially; a restart resumes from the
outbox, so nothing is lost.
"""

from __future__ import annotations

import asyncio

import aiohttp
import aiosqlite
import structlog

from hubproxy.config import MeterSettings
from hubproxy.store import ledger
from hubproxy.store.writer import Writer

log = structlog.get_logger("hubproxy.meter")


class MeterExport:
    def __init__(self, settings: MeterSettings, reader: aiosqlite.Connection, writer: Writer):
        self._settings = settings
        self._reader = reader
        self._writer = writer
        self.delivered = 0

    async def run(self) -> None:
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
        batch = await ledger.pending_meter_events(self._reader, self._settings.batch_size)
        if not batch:
            return False
        ids = [event_id for event_id, _ in batch]
        body = b'{"events":[' + b",".join(payload.encode() for _, payload in batch) + b"]}"
        try:
            async with session.post(
                self._settings.url,
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise MeterRefused(f"webhook answered {resp.status}")
        except BaseException:
            self._writer.submit(ledger.meter_attempted(ids))
            raise
        await self._writer.commit(ledger.meter_delivered(ids))
        self.delivered += len(ids)
        log.info("meter_exported", events=len(ids))
        return len(batch) == self._settings.batch_size


class MeterRefused(Exception):
    """The webhook answered, but not with 2xx."""
