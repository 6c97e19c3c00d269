"""Retention: model_calls older than [database] keep_calls_days, archived then deleted.

Rows are read in small batches by id (ids are time-ordered, so `id < cutoff` is a primary-key
range), appended as JSON lines to `calls-YYYY-MM.jsonl.gz` (by the month the call was made;
each batch is one more gzip member, and a gzip of several members reads as one stream), and
then deleted through the writer, one batch per commit: a batch is small enough never to hold
the writer for long (BATCH rows by primary key: a few milliseconds). A crash between the
archive and the delete archives those rows again next time: an archive may hold a row twice,
never lose one. Rollups, the ledger and balances are never pruned.
"""

from __future__ import annotations

import asyncio
import gzip
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog

from hubproxy.config import DatabaseSettings
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import StoreWriter
from hubproxy.store.reader import Reader

BATCH = 500
INTERVAL_S = 3600.0
_DAY_MS = 86_400_000
_SELECT = "SELECT * FROM model_calls WHERE id < ? AND status <> 'processing' ORDER BY id LIMIT ?"

log = structlog.get_logger("hubproxy.retention")


def archive_dir(settings: DatabaseSettings) -> Path:
    return settings.archive_dir or settings.path.parent / "archive"


class Retention:
    def __init__(
        self, settings: DatabaseSettings, writer: StoreWriter, reader: Reader, *, batch: int = BATCH
    ) -> None:
        self._settings = settings
        self._writer = writer
        self._reader = reader
        self._batch = batch
        self._dir = archive_dir(settings)

    async def run(self) -> None:
        """At start, then every hour; a failed round is logged and the next one runs."""
        while True:
            try:
                await self.once()
            except Exception:
                log.exception("retention_failed")
            await asyncio.sleep(INTERVAL_S)

    async def once(self, now: int | None = None) -> int:
        """Archive and delete every finished call older than the cutoff; how many."""
        cutoff = (now_ms() if now is None else now) - self._settings.keep_calls_days * _DAY_MS
        total = 0
        while True:
            async with self._reader.execute(
                _SELECT, (f"{max(cutoff, 0):012x}", self._batch)
            ) as cur:
                rows = [dict(row) for row in await cur.fetchall()]
            if not rows:
                break
            await asyncio.to_thread(_archive, self._dir, rows)
            ids = [row["id"] for row in rows]
            marks = ", ".join("?" * len(ids))
            sql = f"DELETE FROM model_calls WHERE id IN ({marks}) AND status <> 'processing'"
            await self._writer.commit((sql, ids))
            total += len(rows)
            if len(rows) < self._batch:
                break
        if total:
            log.info("calls_archived", rows=total, directory=str(self._dir))
        return total


def _archive(directory: Path, rows: list[dict[str, Any]]) -> None:
    """Append the rows to their months' archives, durably (fsync) before any delete."""
    directory.mkdir(parents=True, exist_ok=True)
    by_month: dict[str, list[bytes]] = defaultdict(list)
    for row in rows:
        month = datetime.fromtimestamp(row["created_at"] / 1000, UTC).strftime("%Y-%m")
        by_month[month].append(orjson.dumps(row) + b"\n")
    for month, lines in by_month.items():
        path = directory / f"calls-{month}.jsonl.gz"
        with open(path, "ab") as raw:
            with gzip.GzipFile(fileobj=raw, mode="ab") as gz:
                gz.write(b"".join(lines))
            raw.flush()
            os.fsync(raw.fileno())
