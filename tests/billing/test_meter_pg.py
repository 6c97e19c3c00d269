"""The meter exporter on a real PostgreSQL: one exporter at a time under its advisory lock,
failing over when the leader's connection dies mid-batch without losing an event (the one
batch whose acceptance was lost is sent again, with the same keys), and ledger ids committing
out of order are exported without loss."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hubproxy.billing.meter import MeterExport
from hubproxy.config import MeterSettings
from hubproxy.store import ledger
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.meter import PgOutbox
from hubproxy.store.postgres.reader import PgReader, create_pool
from hubproxy.store.postgres.sql import to_postgres
from tests.billing.instances import new_user
from tests.fakes.webhook import Webhook, receiving
from tests.pg import Server
from tests.store.backends import fresh_pg_database

_calls = itertools.count(1)


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Webhook, str]]:
    async with receiving() as served:
        yield served


@pytest.fixture
async def db(pg_template: Server) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    url = await fresh_pg_database(pg_template)
    conn = await schema.connect(url)
    yield url, conn
    await conn.close()


async def debit(conn: asyncpg.Connection, user_id: int) -> str:
    call_id = f"call-{next(_calls)}"
    sql, params = ledger.debit(user_id, call_id, 7, "test")
    await conn.execute(to_postgres(sql), *params)
    return call_id


async def test_exporters_fail_over_and_each_debit_arrives_once_but_the_lost_batch(
    db: tuple[str, asyncpg.Connection], hook: tuple[Webhook, str]
) -> None:
    url, conn = db
    receiver, hook_url = hook
    uid = await new_user(conn, "ada", 10**9)
    keys = [await debit(conn, uid) for _ in range(25)]
    settings = MeterSettings(
        url=hook_url, batch_size=5, interval_s=0.02, timeout_s=5, max_backoff_s=0.1
    )
    outboxes = [PgOutbox(url, standby_s=0.02) for _ in range(2)]
    killed: list[int] = []

    async def kill_the_leader(n: int) -> None:
        # Mid-way, the exporter that posted this batch dies before it can record the answer.
        if n == 3:
            [leader] = [o for o in outboxes if o.leading]
            killed.append(outboxes.index(leader))
            pid = leader.backend_pid
            admin = await schema.connect(url)  # the test's own connection is busy writing
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()

    receiver.before_answer = kill_the_leader
    exporters = [asyncio.create_task(MeterExport(settings, o).run()) for o in outboxes]

    async def more() -> None:  # debits keep coming while the exporters fail over
        for _ in range(25):
            keys.append(await debit(conn, uid))
            await asyncio.sleep(0.005)

    try:
        await more()
        async with asyncio.timeout(20):
            while set(receiver.keys()) != set(keys):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # nothing more arrives
        leaders = [o.leading for o in outboxes]
    finally:
        for task in exporters:
            task.cancel()
        await asyncio.gather(*exporters, return_exceptions=True)
        for o in outboxes:
            await o.close()
    assert killed, "no exporter was killed mid-way"
    received = receiver.keys()
    assert sorted(set(received)) == sorted(keys)
    again = {k for k in received if received.count(k) > 1}
    assert again, "the batch whose answer was lost was not sent again"
    assert again <= set(receiver.batches[2])  # only the lost batch's events came twice
    assert all(received.count(k) == 2 for k in again)
    # One leads (whichever took the lock after the failover), the other stands by.
    assert sorted(leaders) == [False, True]


async def test_only_one_instance_exports_at_a_time(db: tuple[str, asyncpg.Connection]) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 10**9)
    await debit(conn, uid)
    first, second = PgOutbox(url, standby_s=0.02), PgOutbox(url, standby_s=0.02)
    assert len(await first.pending(10)) == 1
    waiting = asyncio.create_task(second.pending(10))
    await asyncio.sleep(0.2)
    assert not waiting.done() and not second.leading  # a standby
    await first.close()  # its instance stops: the standby takes over
    async with asyncio.timeout(5):
        assert len(await waiting) == 1
    await second.close()


async def test_ids_committing_out_of_order_are_exported_without_loss(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    # Two users: a debit locks its user's balance row until its transaction ends.
    ada, bob = await new_user(conn, "ada", 10**9), await new_user(conn, "bob", 10**9)
    early, late = await schema.connect(url), await schema.connect(url)
    outbox = PgOutbox(url, standby_s=0.02)
    try:
        slow = early.transaction()
        await slow.start()
        first = await asyncio.wait_for(debit(early, ada), 5)  # the smaller id, not committed
        second = await asyncio.wait_for(debit(late, bob), 5)  # the larger id, committed first
        ids = dict(await conn.fetch("SELECT call_id, id FROM credit_ledger WHERE kind='debit'"))
        assert ids == {second: ids[second]} and ids[second] > 0
        # An id cursor would export `second` now and skip `first` for ever; the watermark
        # waits for the older transaction to end.
        assert await outbox.pending(10) == []
        await slow.commit()
        events = await outbox.pending(10)
        assert [e["idempotency_key"] for e in events] == [first, second]
        assert events[0]["ledger_id"] < events[1]["ledger_id"]
        await outbox.accepted(events)
        assert await outbox.pending(10) == []
        third = await debit(late, ada)
        assert [e["idempotency_key"] for e in await outbox.pending(10)] == [third]
    finally:
        await outbox.close()
        await early.close()
        await late.close()


async def test_debits_accepted_before_the_migration_are_not_sent_again(
    db: tuple[str, asyncpg.Connection],
) -> None:
    """The migration starts the cursor at its own xid, which every older row carries."""
    url, conn = db
    migrated = await conn.fetchval("SELECT xid::text FROM meter_cursor WHERE name = 'webhook'")
    assert migrated != "0"
    uid = await new_user(conn, "ada", 10**9)
    call = await debit(conn, uid)
    outbox = PgOutbox(url)
    reader = PgReader(await create_pool(url, max_size=1))  # the server's reader
    try:
        events = await outbox.pending(10)
        assert [e["idempotency_key"] for e in events] == [call]
        debited = await conn.fetchval(
            "SELECT created_at FROM credit_ledger WHERE call_id = $1", call
        )
        now = int(debited) + 3000
        # The health page's lag: 3 s behind, by the exporter's (xid, id) cursor.
        assert await ledger.meter_lag_s(reader, now, "postgres") == 3.0
        await outbox.accepted(events)
        assert await ledger.meter_lag_s(reader, now, "postgres") == 0.0
    finally:
        await reader.close()
        await outbox.close()
