"""Backups under load, restore refused while serving, and retention without a writer stall."""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
from pathlib import Path

import orjson

from hubproxy.api.state import READER, WRITER
from hubproxy.store import backup, retention
from hubproxy.store.clock import now_ms
from tests.conftest import HubFactory


async def test_a_backup_under_load_is_whole_and_holds_every_committed_call(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = await hub_factory()
    client = hub.openai()

    async def one() -> None:
        await client.chat.completions.create(
            model="demo/echo", messages=[{"role": "user", "content": "load"}]
        )

    await asyncio.gather(*(one() for _ in range(20)))
    committed = {row["id"] for row in hub.calls()}
    load = asyncio.gather(*(one() for _ in range(40)))  # still calling while it copies
    dest = tmp_path / "copy.db"
    await asyncio.to_thread(backup.backup, hub.settings.database, dest)
    await load
    conn = sqlite3.connect(dest)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        copied = {row[0] for row in conn.execute("SELECT id FROM model_calls")}
    finally:
        conn.close()
    assert committed <= copied


async def test_restore_refuses_while_a_server_runs(hub_factory: HubFactory, tmp_path: Path) -> None:
    hub = await hub_factory()
    dest = tmp_path / "copy.db"
    await asyncio.to_thread(backup.backup, hub.settings.database, dest)
    try:
        backup.restore(hub.settings.database, dest)
        raise AssertionError("restore ran under a live server")
    except backup.Locked:
        pass
    await hub.runner.cleanup()
    backup.restore(hub.settings.database, dest)  # stopped: it goes ahead


async def test_retention_archives_then_deletes_in_short_batches(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = await hub_factory(database={"path": "hub.db", "keep_calls_days": 30})
    old = now_ms() - 40 * 86_400_000
    conn = hub.db()
    rows = [(f"{old + i:012x}{i:016x}", f"r{i}", "demo", "echo", old + i) for i in range(3000)]
    conn.executemany(
        "INSERT INTO model_calls (id, request_id, provider, model, type, status, created_at) "
        "VALUES (?, ?, ?, ?, 'chat', 'success', ?)",
        rows,
    )
    conn.close()
    await hub.openai().chat.completions.create(
        model="demo/echo", messages=[{"role": "user", "content": "recent"}]
    )
    writer = hub.app[WRITER]
    held: list[float] = []
    writer.on_commit = lambda units, seconds: held.append(seconds)
    job = retention.Retention(hub.settings.database, writer, hub.app[READER])
    # The server's own retention task (at start, then hourly) may take a batch of these
    # meanwhile; between them every old row is archived once and deleted.
    assert 0 < await job.once() <= 3000
    assert max(held) < 0.05, max(held)  # no commit held the writer for 50 ms
    [left] = hub.calls()
    assert left["request_id"] != "r0"
    month = sorted((hub.settings.database.path.parent / "archive").glob("calls-*.jsonl.gz"))
    archived = [
        orjson.loads(x) for p in month for x in gzip.decompress(p.read_bytes()).splitlines()
    ]
    assert sorted(r["request_id"] for r in archived) == sorted(r[1] for r in rows)
