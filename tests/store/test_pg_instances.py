"""Instances on PostgreSQL: heartbeats on the database's clock, the silent ones' calls failed
once by one of the others, and the sweeps taking turns under the advisory lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hubproxy.gateway.instances import Instance
from hubproxy.store import calls
from hubproxy.store.instances import Me
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.instances import SWEEP_LOCK, PgRegistry
from tests.store.backends import Store
from tests.store.test_backends import finish_op, start_op, user

pytestmark = pytest.mark.parametrize("store", ["postgres"], indirect=True)


@pytest.fixture
async def registries(store: Store) -> AsyncIterator[tuple[PgRegistry, PgRegistry]]:
    a, b = PgRegistry(store.url), PgRegistry(store.url)
    yield a, b
    await a.close()
    await b.close()


def me(name: str) -> Me:
    return Me(name, "host", 1, 0)


async def age(store: Store, instance: str, ms: int) -> None:
    """Move an instance's last heartbeat `ms` into the past."""
    conn = await schema.connect(store.url)
    try:
        await conn.execute(
            "UPDATE instances SET last_seen = last_seen - $1 WHERE id = $2", ms, instance
        )
    finally:
        await conn.close()


async def test_a_beat_says_whether_the_row_was_still_there(
    store: Store, registries: tuple[PgRegistry, PgRegistry]
) -> None:
    a, _ = registries
    await a.register(me("a:1"))
    first = await store.value("SELECT last_seen FROM instances WHERE id = 'a:1'")
    await asyncio.sleep(0.01)
    assert await a.beat(me("a:1")) is True
    assert await store.value("SELECT last_seen FROM instances WHERE id = 'a:1'") > first
    await store.writer.commit(("DELETE FROM instances WHERE id = ?", ("a:1",)))
    assert await a.beat(me("a:1")) is False  # others took it for dead
    assert await store.value("SELECT count(*) FROM instances WHERE id = 'a:1'") == 1


async def test_a_silent_instances_calls_are_failed_once_by_one_other(
    store: Store, registries: tuple[PgRegistry, PgRegistry]
) -> None:
    a, b = registries
    uid = await user(store)
    for name in ("dead:1", "a:1", "b:1"):
        await a.register(me(name))
    await store.writer.commit(
        start_op("c-dead", uid, instance="dead:1"), start_op("c-a", uid, instance="a:1")
    )
    await age(store, "dead:1", 31_000)
    reason = "stale: instance went silent (no heartbeat for 30 s)"
    got = await asyncio.gather(a.reap("a:1", 30_000, reason), b.reap("b:1", 30_000, reason))
    # Both at once: one holds the lock (or comes second and finds nothing left).
    assert sorted(x for ids in got if ids for x in ids) == ["dead:1"]
    rows = dict(await store.rows("SELECT id, status FROM model_calls ORDER BY id"))
    assert rows == {"c-a": "processing", "c-dead": "failed"}
    assert await store.value("SELECT error FROM model_calls WHERE id = 'c-dead'") == reason
    ids = [r[0] for r in await store.rows("SELECT id FROM instances ORDER BY id")]
    assert ids == ["a:1", "b:1"]
    assert await a.reap("a:1", 30_000, reason) == []
    # It was only slow: its call's real finish still lands.
    await store.writer.commit(finish_op("c-dead", uid, 0, instance="dead:1"))
    assert await store.value("SELECT status FROM model_calls WHERE id = 'c-dead'") == "success"


async def test_the_sweeps_wait_their_turn_under_the_advisory_lock(
    store: Store, registries: tuple[PgRegistry, PgRegistry]
) -> None:
    a, _ = registries
    uid = await user(store)
    await store.writer.commit(start_op("old", uid, created_at=1000))
    stale = calls.sweep_op(10_000, "stale: test")
    holder = await schema.connect(store.url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock($1)", SWEEP_LOCK)
            assert await a.sweep(stale) is False
            assert await a.reap("a:1", 30_000, "stale: x") is None
            assert await store.value("SELECT status FROM model_calls") == "processing"
        assert await a.sweep(stale) is True
        assert await store.value("SELECT status FROM model_calls") == "failed"
    finally:
        await holder.close()


async def test_a_lost_connection_is_opened_again(
    store: Store, registries: tuple[PgRegistry, PgRegistry]
) -> None:
    a, _ = registries
    await a.register(me("a:1"))
    pid = await store.value(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
        "pg_backend_pid() AND query LIKE '%instances%' ORDER BY backend_start DESC LIMIT 1"
    )
    conn = await schema.connect(store.url)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
    # The round that meets the dead connection may fail (the tasks log it); the next one
    # opens a new connection.
    for _ in range(2):
        try:
            assert await a.beat(me("a:1")) is True
            break
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        ):
            continue
    else:
        raise AssertionError("the registry did not reconnect")
    alive = await store.rows("SELECT 1 FROM pg_stat_activity WHERE pid = ?", pid)
    assert alive == []


async def test_on_dead_hooks_get_the_ids_and_a_failing_hook_spares_the_others(
    store: Store, registries: tuple[PgRegistry, PgRegistry]
) -> None:
    a, _ = registries
    instance = Instance(a, "a:1", dead_after_s=30, stale_after_s=1800)
    await instance.start()
    await a.register(me("dead:1"))
    await age(store, "dead:1", 30_001)
    seen: list[list[str]] = []

    async def broken(ids: list[str]) -> None:
        raise RuntimeError("boom")

    async def hook(ids: list[str]) -> None:
        seen.append(ids)

    instance.on_dead += [broken, hook]
    assert await instance.reap() == ["dead:1"]
    assert seen == [["dead:1"]]
    assert await instance.reap() == []
    assert seen == [["dead:1"]]
