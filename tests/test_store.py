"""The store: migrations, the writer's batches, and the sweep of calls that never finished."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from hubproxy.api.state import INSTANCE, READER, WRITER
from hubproxy.config import DatabaseSettings
from hubproxy.gateway import record
from hubproxy.gateway.instances import Instance
from hubproxy.store import db
from hubproxy.store.instances import SqliteRegistry
from hubproxy.store.migrate import MigrationError, available, migrate, migrations_dir
from hubproxy.store.writer import Writer
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import FakeOpenAI


def a_call(request_id: str, age_ms: int = 0, instance: str = "") -> record.Call:
    call = record.Call.begin(
        request_id=request_id, user_id=None, api_key_id=None, provider="p", model="m",
        type="chat", stream=False, trace_id=None,
    )  # fmt: skip
    call.created_at -= age_ms
    call.instance = instance
    return call


def sweeper(hub: Hub, stale_after_s: float) -> Instance:
    """The running hub's sweep with another age."""
    registry = SqliteRegistry(hub.app[WRITER], hub.app[READER])
    return Instance(registry, "sweeper:1", dead_after_s=30, stale_after_s=stale_after_s)


def connect(tmp_path: Path) -> sqlite3.Connection:
    return db.connect(DatabaseSettings(path=tmp_path / "t.db"))


def schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()


def test_migrations_apply_once(tmp_path: Path) -> None:
    conn = connect(tmp_path)
    applied = migrate(conn)
    assert applied == [p.name for p in available(migrations_dir())]
    before = schema(conn)
    assert migrate(conn) == [] and schema(conn) == before
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_failed_migration_leaves_database_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (folder / "0002_bad.sql").write_text(
        "CREATE TABLE b (x INTEGER);\nINSERT INTO a VALUES (1);\nTHIS IS NOT SQL;\n"
    )
    conn = connect(tmp_path)
    with pytest.raises(MigrationError, match=r"0002_bad\.sql"):
        migrate(conn, folder)
    names = {name for _, name in schema(conn)}
    assert "a" in names and "b" not in names
    assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 0
    assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations")] == ["0001_ok.sql"]


async def test_writer_batches_and_isolates_a_bad_write(tmp_path: Path) -> None:
    conn = connect(tmp_path)
    conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    writer = Writer(conn)
    writer.start()
    futures = [writer.commit(("INSERT INTO t VALUES (?)", (i,))) for i in range(100)]
    bad = writer.commit(("INSERT INTO t VALUES (?)", (5,)))  # a duplicate key
    await asyncio.gather(*futures)
    with pytest.raises(sqlite3.IntegrityError):
        await bad
    assert writer.batches <= 3, "queued writes must share transactions"
    await writer.close()
    check = connect(tmp_path)
    assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 100


async def test_sweep_fails_stale_processing_calls(hub: Hub) -> None:
    gateway_writer = hub.app[WRITER]
    await gateway_writer.commit(a_call("r1", age_ms=3_600_000).start_op())  # an hour ago
    await gateway_writer.commit(a_call("r2").start_op())
    await sweeper(hub, stale_after_s=1800).sweep()
    status = {r["request_id"]: (r["status"], r["error"]) for r in hub.calls()}
    assert status["r1"] == ("failed", "stale: still processing after 1800 s")
    assert status["r2"] == ("processing", None)


async def test_startup_fails_calls_left_by_a_crash(hub_factory: HubFactory) -> None:
    first = await hub_factory()
    conn = first.db()
    conn.execute(*a_call("crashed").start_op())
    conn.close()
    await first.runner.cleanup()
    second = await hub_factory()
    [row] = [r for r in second.calls() if r["request_id"] == "crashed"]
    assert row["status"] == "failed" and row["error"].startswith("interrupted")


async def test_startup_fails_only_this_instances_calls(hub_factory: HubFactory) -> None:
    first = await hub_factory(server={"instance": "me:1"})
    assert first.app[INSTANCE].id == "me:1"
    conn = first.db()
    conn.execute(*a_call("mine", instance="me:1").start_op())
    conn.execute(*a_call("theirs", instance="other:2").start_op())
    conn.close()
    await first.runner.cleanup()
    second = await hub_factory(server={"instance": "me:1"})
    status = {r["request_id"]: r["status"] for r in second.calls()}
    assert status == {"mine": "failed", "theirs": "processing"}


async def test_calls_carry_the_instance_and_it_beats(hub: Hub) -> None:
    me = hub.app[INSTANCE].id
    assert me == f"{socket.gethostname()}:{hub.settings.server.port}"
    async with aiohttp.ClientSession() as s, s.post(
        hub.url + "/v1/chat/completions",
        json={"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {hub.key}"},
    ) as r:  # fmt: skip
        assert r.status == 200
    await hub.app[WRITER].flush()
    assert [c["instance_id"] for c in hub.calls()] == [me]
    conn = hub.db()
    [row] = conn.execute("SELECT id, pid FROM instances").fetchall()
    conn.close()
    assert tuple(row) == (me, os.getpid())


async def test_a_silent_instances_calls_are_failed_by_another(hub_factory: HubFactory) -> None:
    hub = await hub_factory(server={"heartbeat_s": 0.05, "dead_after_s": 0.2})
    dead: list[list[str]] = []

    async def hook(ids: list[str]) -> None:
        dead.append(ids)

    hub.app[INSTANCE].on_dead.append(hook)
    conn = hub.db()
    conn.execute(
        "INSERT INTO instances (id, host, pid, started_at, last_seen) VALUES (?, ?, ?, ?, ?)",
        ("gone:1", "h", 1, 0, int(time.time() * 1000)),
    )
    conn.execute(*a_call("orphan", instance="gone:1").start_op())
    conn.close()
    await hub.eventually(lambda: hub.calls()[0]["status"] == "failed")
    [row] = hub.calls()
    assert row["error"] == "stale: instance went silent (no heartbeat for 0.2 s)"
    assert dead == [["gone:1"]]  # once, though the reaper runs every 50 ms
    await asyncio.sleep(0.2)
    assert dead == [["gone:1"]]
    conn = hub.db()
    assert [r[0] for r in conn.execute("SELECT id FROM instances")] == [hub.app[INSTANCE].id]
    conn.close()


async def test_periodic_sweep_runs(hub_factory: HubFactory) -> None:
    hub = await hub_factory(database={"path": "hub.db", "stale_after_s": 0.05,
                                      "sweep_interval_s": 0.05})  # fmt: skip
    conn = hub.db()
    conn.execute(*a_call("late").start_op())
    conn.close()
    await hub.eventually(lambda: hub.calls()[0]["status"] == "failed")


async def test_a_long_call_the_sweep_gave_up_on_keeps_its_real_outcome(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    body = {"model": "up/gated", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession() as s, s.post(
        hub.url + "/v1/chat/completions", json=body,
        headers={"Authorization": f"Bearer {hub.key}"},
    ) as r:  # fmt: skip
        await asyncio.wait_for(fake.first_sent.wait(), 5)
        await hub.app[WRITER].flush()
        await asyncio.sleep(0.02)  # older than the sweep's age below
        await sweeper(hub, stale_after_s=0.01).sweep()
        assert [c["status"] for c in hub.calls()] == ["failed"]
        fake.release.set()
        assert (await r.read()).endswith(b"data: [DONE]\n\n")
    [row] = hub.calls()
    assert (row["status"], row["error"]) == ("success", None)
    assert row["completion_tokens"] == 4
