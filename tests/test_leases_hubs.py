"""Three hubs (three apps in this process, each with its own store, writer, leases and meter
exporter) on one PostgreSQL database: 300 concurrent streamed calls spread across them never
admit more than the balance's holds nor overdraw it, and the meter webhook receives each debit
once while its exporters fail over (the leader's connection terminated mid-way).

The in-process twin of issue #12's three-process tests (those need the instances' harness)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hubproxy.store.postgres import schema
from hubproxy.store.postgres.meter import LOCK
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.webhook import Webhook, receiving
from tests.test_billing import MESSAGES, RATE, grant, ledger_agrees

BACKENDS = ("postgres",)  # several instances share one database only there


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    async with receiving() as served:
        yield served


async def three_hubs(hub_factory: HubFactory, base_url: str, meter_url: str) -> list[Hub]:
    hubs = []
    for n in range(3):
        hubs.append(
            await hub_factory(
                [{"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-0000"}],
                billing={"mode": "credits", "rates": [RATE]},
                **{
                    "billing.meter": {
                        "url": meter_url,
                        "batch_size": 7,
                        "interval_s": 0.05,
                        "max_backoff_s": 0.2,
                    }
                },
                database={"path": f"hub{n}.db"},  # a journal of its own
            )
        )
    return hubs


async def leader_pid(url: str) -> int | None:
    conn = await schema.connect(url)
    try:
        pid = await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = $1",
            LOCK,
        )
        return None if pid is None else int(pid)
    finally:
        await conn.close()


async def test_300_calls_on_three_hubs_admit_at_most_the_balance_and_meter_each_debit_once(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], webhook: tuple[Webhook, str]
) -> None:
    fake, base_url = upstream
    receiver, meter_url = webhook
    hubs = await three_hubs(hub_factory, base_url, meter_url)
    url = hubs[0].settings.database.url
    assert url is not None
    dsn = url.reveal()
    # Each call holds 8 (prompt estimate) + 10 (max_tokens) = 18 and costs 11 + 4 = 15.
    grant(hubs[0], "alice", "0.00054")  # covers exactly 30 holds
    body = {"model": "up/gated", "messages": MESSAGES, "stream": True, "max_tokens": 10}

    async def one(session: aiohttp.ClientSession, hub: Hub) -> int:
        async with session.post(
            hub.url + "/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r:  # fmt: skip
            await r.read()
            return r.status

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(one(session, hubs[i % 3])) for i in range(300)]
        # Every call but those admitted is refused while the admitted ones stream.
        await hubs[0].eventually(lambda: sum(t.done() for t in tasks) >= 270, seconds=30)
        conn = await schema.connect(dsn)
        try:
            balance, leased = await conn.fetchrow(
                "SELECT balance, leased FROM credit_balances WHERE user_id = 1"
            )
            assert balance == 540 and 0 <= leased <= balance
        finally:
            await conn.close()
        fake.release.set()
        statuses = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    admitted = statuses.count(200)
    assert admitted <= 30 and statuses.count(402) == 300 - admitted
    assert admitted == 30  # one hub leased the whole balance: nothing was stranded
    for hub in hubs:
        await hub.settle()
    [row] = hubs[0].rows("SELECT balance FROM credit_balances WHERE user_id = 1")
    assert row["balance"] == 540 - 15 * admitted >= 0
    ledger_agrees(hubs[0])

    # The meter: its exporter fails over (the leader's connection dies) while debits come in.
    debits = {r["call_id"] for r in hubs[0].rows("SELECT call_id FROM credit_ledger "
                                                 "WHERE kind = 'debit'")}  # fmt: skip
    async with asyncio.timeout(20):
        while (pid := await leader_pid(dsn)) is None or len(receiver.batches) < 2:
            await asyncio.sleep(0.02)
    admin = await schema.connect(dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    async with asyncio.timeout(20):
        while set(receiver.keys()) != debits:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # nothing more arrives
    received = receiver.keys()
    again = {k for k in received if received.count(k) > 1}
    assert all(received.count(k) <= 2 for k in received)
    # Only one batch may have come twice: the one whose acceptance the dead leader lost.
    assert any(again <= set(batch) for batch in receiver.batches)
