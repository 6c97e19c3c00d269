"""Three `hubproxy serve` processes on one PostgreSQL (tests/multi.py): a key revoked on one is
refused by the others within 2 s (LISTEN/NOTIFY, not the poll); `kill -9` of one under load
leaves the others serving, its calls failed by them once its heartbeat goes silent, and the
ledger equal to every balance."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.multi import Cluster, cluster_database
from tests.pg import Server

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"


def body(model: str, *, stream: bool = True) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def fake(upstream: tuple[FakeOpenAI, str]) -> tuple[FakeOpenAI, str]:
    """The fake OpenAI upstream (conftest's), which the instances' provider points at."""
    return upstream


@pytest.fixture
async def database(pg_template: Server) -> str:
    return await cluster_database(pg_template)


async def status_of(s: aiohttp.ClientSession, url: str, key: str) -> int:
    async with s.post(url + CHAT, json=body("demo/echo", stream=False), headers=bearer(key)) as r:
        await r.read()
        return r.status


async def test_a_key_revoked_on_one_instance_is_refused_by_the_others_within_2_s(
    tmp_path: Path, database: str
) -> None:
    cluster = Cluster(
        tmp_path, database,
        auth={"reload_interval_s": 60.0},  # the poll is far off: only NOTIFY can be in time
        providers=[{"name": "demo", "type": "fake", "models": ["echo"]}],
    )  # fmt: skip
    _, keeper = cluster.new_key("alice")
    doomed_id, doomed = cluster.new_key("alice")
    await cluster.start()
    try:
        async with aiohttp.ClientSession() as s:
            for node in cluster.nodes:
                assert await status_of(s, node.url, doomed) == 200
            async with s.delete(
                f"{cluster[0].url}/api/user/keys/{doomed_id}", headers=bearer(keeper)
            ) as r:
                assert r.status == 200, await r.text()
            loop = asyncio.get_running_loop()
            revoked_at = loop.time()
            refused: dict[str, float] = {}
            while len(refused) < 2 and loop.time() - revoked_at < 2.0:
                for node in cluster.nodes[1:]:
                    if node.name not in refused and await status_of(s, node.url, doomed) == 401:
                        refused[node.name] = loop.time() - revoked_at
                await asyncio.sleep(0.02)
            assert sorted(refused) == ["node-1", "node-2"], f"refused so far: {refused}"
            assert await status_of(s, cluster[0].url, doomed) == 401
            for node in cluster.nodes:
                assert await status_of(s, node.url, keeper) == 200
    finally:
        cluster.stop()


async def test_kill_9_of_one_instance_under_load(
    tmp_path: Path, database: str, fake: tuple[FakeOpenAI, str]
) -> None:
    upstream, base_url = fake
    rates = [{"model": m, "input": "1", "output": "1"} for m in ("demo/echo", "up/gated")]
    cluster = Cluster(
        tmp_path, database,
        server={"heartbeat_s": 0.2, "dead_after_s": 1.0},
        billing={"mode": "credits", "rates": rates},
        providers=[
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-0000001"},
        ],
    )  # fmt: skip
    _, key = cluster.new_key("alice")
    cluster.cli("credits", "grant", "alice", "1000")
    await cluster.start()
    db = await asyncpg.connect(database)
    served = {node.name: 0 for node in cluster.nodes}
    failed_on_survivors: list[int] = []
    killed = asyncio.Event()
    stop = asyncio.Event()

    async def load(i: int) -> None:
        node = cluster[i % 3]
        async with aiohttp.ClientSession() as s:
            for _ in range(100_000):  # bounded; `stop` ends it long before
                if stop.is_set() or (i % 3 == 0 and killed.is_set()):
                    return
                try:
                    async with s.post(
                        node.url + CHAT, json=body("demo/echo"), headers=bearer(key)
                    ) as r:
                        data = await r.read()
                except aiohttp.ClientError:
                    assert i % 3 == 0, "a survivor dropped a call"
                    return
                if r.status == 200 and data.endswith(b"data: [DONE]\n\n"):
                    served[node.name] += 1
                elif i % 3 != 0:
                    failed_on_survivors.append(r.status)

    async def gated() -> None:  # in flight on node-0 when it dies: never finished by it
        async with aiohttp.ClientSession() as s:
            try:
                async with s.post(
                    cluster[0].url + CHAT, json=body("up/gated"), headers=bearer(key)
                ) as r:
                    await r.read()
            except aiohttp.ClientError:
                pass

    clients = [asyncio.create_task(load(i)) for i in range(9)]
    stuck = [asyncio.create_task(gated()) for _ in range(3)]
    try:
        sql = (
            "SELECT count(*) FROM model_calls WHERE instance_id = 'node-0' "
            "AND status = 'processing' AND model = 'gated'"
        )
        for _ in range(200):  # bounded: 10 s for the calls' rows and some load everywhere
            if await db.fetchval(sql) == 3 and min(served.values()) > 0:
                break
            await asyncio.sleep(0.05)
        assert await db.fetchval(sql) == 3
        assert min(served.values()) > 0, f"served: {served}, failed: {failed_on_survivors}"
        cluster.kill(0, signal.SIGKILL)
        killed.set()
        at_kill = {name: served[name] for name in ("node-1", "node-2")}
        gone = (  # its load's calls in flight too, but these for sure
            "SELECT count(*) FROM model_calls WHERE instance_id = 'node-0' AND "
            "model = 'gated' AND status = 'failed' AND error LIKE 'stale: instance went silent%'"
        )
        for _ in range(200):  # bounded: 10 s; dead after 1 s of silence, reaped every 0.2 s
            if await db.fetchval(gone) == 3:
                break
            await asyncio.sleep(0.05)
        assert await db.fetchval(gone) == 3
        left = (
            "SELECT count(*) FROM model_calls "
            "WHERE instance_id = 'node-0' AND status = 'processing'"
        )
        assert await db.fetchval(left) == 0
        assert await db.fetchval("SELECT count(*) FROM instances WHERE id = 'node-0'") == 0
        for name in ("node-1", "node-2"):
            assert served[name] > at_kill[name], f"{name} stopped serving"
        assert failed_on_survivors == []
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), 60)
        # node-0's records of calls its clients saw complete wait in its own journal, which
        # it commits when it starts again.
        await cluster.start(0)
    finally:
        stop.set()
        upstream.release.set()
        await asyncio.wait_for(asyncio.gather(*clients, *stuck, return_exceptions=True), 60)
        cluster.stop()
    try:
        mismatched = await db.fetch(
            "SELECT b.user_id, b.balance, coalesce(sum(l.amount), 0) AS ledger "
            "FROM credit_balances b LEFT JOIN credit_ledger l ON l.user_id = b.user_id "
            "GROUP BY b.user_id, b.balance HAVING b.balance <> coalesce(sum(l.amount), 0)"
        )
        assert mismatched == []
        debits = await db.fetchval("SELECT count(*) FROM credit_ledger WHERE kind = 'debit'")
        assert debits >= sum(served.values())
        assert (
            await db.fetchval("SELECT count(*) FROM model_calls WHERE status = 'processing'") == 0
        )
    finally:
        await db.close()
