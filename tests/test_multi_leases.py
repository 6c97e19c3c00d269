"""Three `hubproxy serve` processes on one PostgreSQL (tests/multi.py): 300 concurrent streamed
calls spread across them, against a balance that covers 30 holds, admit at most 30 and leave
the balance >= 0 with the ledger agreeing; the meter webhook receives each debit once while
its exporter fails over (the leader's connection terminated), but for one batch at most."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hubproxy.store.postgres.meter import LOCK
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.webhook import Webhook, receiving
from tests.multi import Cluster, cluster_database
from tests.pg import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def fake(upstream: tuple[FakeOpenAI, str]) -> tuple[FakeOpenAI, str]:
    """The fake OpenAI upstream (conftest's), which the instances' provider points at."""
    return upstream


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    async with receiving() as served:
        yield served


@pytest.fixture
async def database(pg_template: Server) -> str:
    return await cluster_database(pg_template)


async def test_300_streamed_calls_on_three_processes_and_the_meter_failing_over(
    tmp_path: Path,
    database: str,
    fake: tuple[FakeOpenAI, str],
    webhook: tuple[Webhook, str],
) -> None:
    upstream, base_url = fake
    receiver, meter_url = webhook
    meter = {"url": meter_url, "batch_size": 7, "interval_s": 0.05, "max_backoff_s": 0.2}
    cluster = Cluster(
        tmp_path, database,
        billing={"mode": "credits",
                 "rates": [{"model": "up/gated", "input": "1", "output": "1"}]},
        providers=[
            {"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-0000001"},
        ],
        **{"billing.meter": meter},
    )  # fmt: skip
    _, key = cluster.new_key("alice")
    # Each call holds 8 (prompt estimate) + 10 (max_tokens) = 18 and costs 11 + 4 = 15.
    cluster.cli("credits", "grant", "alice", "0.00054")  # covers exactly 30 holds
    await cluster.start()
    db = await asyncpg.connect(database)
    body = {"model": "up/gated", "stream": True, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip

    async def one(s: aiohttp.ClientSession, i: int) -> int:
        async with s.post(
            cluster[i % 3].url + "/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as r:  # fmt: skip
            await r.read()
            return r.status

    try:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=90)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as s:
            calls = [asyncio.create_task(one(s, i)) for i in range(300)]
            for _ in range(600):  # bounded: 30 s for every call but the admitted to be refused
                if sum(c.done() for c in calls) >= 270:
                    break
                await asyncio.sleep(0.05)
            balance, leased = await db.fetchrow(
                "SELECT balance, leased FROM credit_balances WHERE user_id = "
                "(SELECT id FROM users WHERE name = 'alice')"
            )
            assert balance == 540 and 0 <= leased <= balance
            upstream.release.set()
            statuses = await asyncio.wait_for(asyncio.gather(*calls), 90)
        admitted = statuses.count(200)
        assert 0 < admitted <= 30 and statuses.count(402) == 300 - admitted
        for _ in range(200):  # bounded: the instances commit on their writers' tasks
            debits = {r[0] for r in await db.fetch(
                "SELECT call_id FROM credit_ledger WHERE kind = 'debit'")}  # fmt: skip
            if len(debits) == admitted:
                break
            await asyncio.sleep(0.05)
        assert len(debits) == admitted
        balance = await db.fetchval("SELECT balance FROM credit_balances")
        assert balance == 540 - 15 * admitted >= 0
        assert balance == await db.fetchval("SELECT sum(amount) FROM credit_ledger")

        # The meter: terminate the exporting instance's connection (its lock goes with it).
        for _ in range(400):  # bounded: 20 s
            pid = await db.fetchval(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = $1",
                LOCK,
            )
            if pid is not None and receiver.batches:
                break
            await asyncio.sleep(0.05)
        assert pid is not None
        assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(400):  # bounded: 20 s for another instance to take over and finish
            if set(receiver.keys()) == debits:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing more arrives
        received = receiver.keys()
        assert set(received) == debits
        again = {k for k in received if received.count(k) > 1}
        assert all(received.count(k) <= 2 for k in received)
        assert any(again <= set(batch) for batch in receiver.batches)  # one batch at most
    finally:
        upstream.release.set()
        cluster.stop()
        await db.close()
