"""Credit leases on a real PostgreSQL: instances racing on one balance never overdraw it,
admit exactly what it covers, give their leases back at shutdown, and a crashed instance's
leases are reclaimed once they expire; grants are leasable at once; a debit takes its cost out
of the lease in its own transaction, once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hubproxy.billing.credits import Hold
from hubproxy.errors import PaymentRequired, ServiceUnavailable
from hubproxy.store import ledger
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.sql import to_postgres
from tests.billing.instances import BODY, HOLD, Instance, instance, money, new_user
from tests.pg import Server
from tests.store.backends import fresh_pg_database

_calls = itertools.count(1)


@pytest.fixture
async def db(pg_template: Server) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    url = await fresh_pg_database(pg_template)
    conn = await schema.connect(url)
    yield url, conn
    await conn.close()


async def admit_many(inst: Instance, user_id: int, n: int) -> list[object]:
    return await asyncio.gather(*(inst.admit(user_id) for _ in range(n)), return_exceptions=True)


async def test_three_instances_racing_admit_exactly_what_the_balance_covers(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 30 * HOLD)
    nodes = [await instance(url, f"i{n}") for n in range(3)]
    results = await asyncio.wait_for(
        asyncio.gather(*(admit_many(node, uid, 40) for node in nodes)), 30
    )
    admitted = [r for per in results for r in per if not isinstance(r, BaseException)]
    refused = [r for per in results for r in per if isinstance(r, BaseException)]
    assert len(admitted) == 30
    assert len(refused) == 90 and all(isinstance(r, PaymentRequired) for r in refused)
    balance, leased, rows, _ = await money(conn, uid)
    assert (balance, leased, rows) == (30 * HOLD, 30 * HOLD, 30 * HOLD)
    # Each settles at its hold (the most it may cost): the balance reaches 0, never below.
    for node, per in zip(nodes, results, strict=True):
        for hold in per:
            if not isinstance(hold, BaseException):
                await node.settle(hold, f"c{next(_calls)}", HOLD)  # type: ignore[arg-type]
    for node in nodes:
        await node.stop()
    assert await money(conn, uid) == (0, 0, 0, 0)


async def test_a_call_that_fits_the_lease_needs_no_round_trip(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 100 * HOLD)
    node = await instance(url, "i0", slice_amount=10 * HOLD)
    await node.admit(uid)  # no lease yet: this one waits for one
    assert node.leases.round_trips == 1
    held = node.credits.admit(uid, "p", "m", "chat", dict(BODY))
    assert isinstance(held, Hold)  # held at once, from memory: nothing to await
    assert node.leases.round_trips == 1
    await node.stop()


async def test_the_lease_is_refilled_in_the_background_before_it_runs_out(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 100 * HOLD)
    node = await instance(url, "i0", slice_amount=4 * HOLD)
    await node.admit(uid)  # leases 4 holds, holds 1
    trips = node.leases.round_trips
    for _ in range(2):  # 2 more fit: the last leaves less than half a slice unheld
        hold = node.credits.admit(uid, "p", "m", "chat", dict(BODY))
        assert isinstance(hold, Hold)
    async with asyncio.timeout(5):
        while node.leases.leased.get(uid, 0) < 8 * HOLD:
            await asyncio.sleep(0.01)
    assert node.leases.round_trips == trips + 1
    hold = node.credits.admit(uid, "p", "m", "chat", dict(BODY))
    assert isinstance(hold, Hold)  # the refill made room: no wait
    await node.stop()


async def test_debits_come_out_of_the_lease_once_and_shutdown_gives_the_rest_back(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 10 * HOLD)
    node = await instance(url, "i0", slice_amount=5 * HOLD)
    hold = await node.admit(uid)
    assert (await money(conn, uid))[:3] == (10 * HOLD, 5 * HOLD, 5 * HOLD)
    await node.settle(hold, "c1", 10)  # cost 10 of the 18 held
    assert await money(conn, uid) == (10 * HOLD - 10, 5 * HOLD - 10, 5 * HOLD - 10, 10 * HOLD - 10)
    # The same unit again (a journal replayed after a crash): no second debit, no second take.
    await node.writer.commit(node.leases.consume(uid, "c1", 10), ledger.debit(uid, "c1", 10, "i0"))
    assert await money(conn, uid) == (10 * HOLD - 10, 5 * HOLD - 10, 5 * HOLD - 10, 10 * HOLD - 10)
    await node.stop()
    assert await money(conn, uid) == (10 * HOLD - 10, 0, 0, 10 * HOLD - 10)
    assert await conn.fetchval("SELECT count(*) FROM credit_leases") == 0


async def test_a_crashed_instances_leases_are_reclaimed_once_they_expire(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 6 * HOLD)
    dead = await instance(url, "dead", slice_amount=6 * HOLD, ttl_s=0.5)
    await dead.admit(uid)  # it leases the whole balance
    await dead.crash()
    alive = await instance(url, "alive", slice_amount=6 * HOLD, ttl_s=0.5)
    with pytest.raises(PaymentRequired):
        await alive.admit(uid)  # all of it is leased by the dead instance
    await asyncio.sleep(0.6)
    await alive.leases.tend(lambda _: 0)  # any instance reclaims what expired
    assert (await money(conn, uid))[1:3] == (0, 0)
    for _ in range(6):
        await alive.admit(uid)
    with pytest.raises(PaymentRequired):
        await alive.admit(uid)
    await alive.stop()


async def test_a_dead_instance_named_by_heartbeat_is_reclaimed_at_once(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 6 * HOLD)
    dead = await instance(url, "dead", slice_amount=6 * HOLD)
    await dead.admit(uid)
    await dead.crash()
    alive = await instance(url, "alive", slice_amount=6 * HOLD)
    await alive.leases.on_dead(["dead"])  # the heartbeats' hook (instances.Instance.on_dead)
    assert (await money(conn, uid))[1:3] == (0, 0)
    await alive.admit(uid)
    await alive.stop()


async def test_a_grant_is_leasable_at_once_and_idle_leases_go_back(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", HOLD)
    a = await instance(url, "a", slice_amount=10 * HOLD, idle_s=0.0)
    b = await instance(url, "b", slice_amount=10 * HOLD)
    hold = await a.admit(uid)
    async with asyncio.timeout(5):  # a's refill finds nothing free
        while a.leases.refilling:
            await asyncio.sleep(0.01)
    with pytest.raises(PaymentRequired):
        await b.admit(uid)
    sql, params = ledger.entry(uid, "grant", 2 * HOLD, source="")
    await conn.execute(to_postgres(sql), *params)  # the CLI, or another instance's admin API
    await b.admit(uid)  # no reload, no wait for a poll: the next lease sees it
    await a.settle(hold, "c1", 0)  # free: nothing debited, the hold released
    await a.leases.tend(a.credits.holding)  # idle: a gives its lease back
    assert uid not in a.leases.leased
    assert (await money(conn, uid))[1] == b.leases.leased[uid]
    await b.admit(uid)  # the returned credits are b's to lease
    await a.stop()
    await b.stop()


async def test_a_lease_reclaimed_while_its_holder_lived_is_dropped_by_the_holder(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 4 * HOLD)
    node = await instance(url, "i0", slice_amount=4 * HOLD)
    await node.admit(uid)
    await conn.execute("SELECT credit_lease_reclaim(0, 'i0')")  # taken for dead by another
    await node.leases.tend(node.credits.holding)
    assert node.leases.usable(uid) == 0
    assert (await money(conn, uid))[1] == 0
    await node.stop()


async def test_300_calls_across_three_instances_never_overdraw_and_the_ledger_agrees(
    db: tuple[str, asyncpg.Connection],
) -> None:
    """The module-level twin of the three-process test: 300 calls spread over three instances
    against a balance of 30 holds, each settling (after a pause) at a cost up to its hold, so
    that later calls are admitted against what earlier ones did not spend."""
    url, conn = db
    uid = await new_user(conn, "ada", 30 * HOLD)
    nodes = [await instance(url, f"i{n}", slice_amount=2 * HOLD, idle_s=0.0) for n in range(3)]
    costs = itertools.cycle([HOLD, HOLD - 5, 3, HOLD])

    async def call(node: Instance, cost: int) -> bool:
        try:
            hold = await node.admit(uid)
        except PaymentRequired:
            return False
        await asyncio.sleep(0.01)
        await node.settle(hold, f"c{next(_calls)}", cost)
        return True

    async def upkeep() -> None:  # what Leases.run does, faster
        while True:
            await asyncio.sleep(0.05)
            for node in nodes:
                await node.leases.tend(node.credits.holding)

    tending = asyncio.create_task(upkeep())
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(call(nodes[i % 3], next(costs)) for i in range(300))), 60
        )
    finally:
        tending.cancel()
        await asyncio.gather(tending, return_exceptions=True)
    for node in nodes:
        await node.stop()
    balance, leased, rows, ledger_sum = await money(conn, uid)
    assert balance >= 0 and balance == ledger_sum
    assert (leased, rows) == (0, 0)
    spent = await conn.fetchval("SELECT -sum(amount) FROM credit_ledger WHERE kind = 'debit'")
    assert spent == 30 * HOLD - balance
    assert 30 <= sum(results) < 300  # at least the balance's worth, and refusals once spent


async def test_an_idle_user_s_whole_lease_row_goes_back(
    db: tuple[str, asyncpg.Connection],
) -> None:
    """A call that overran its hold and the lease's rest: the lease is used up, the overrun
    alone comes off the free balance, and the idle return drops the row."""
    url, conn = db
    uid = await new_user(conn, "ada", 10 * HOLD)
    node = await instance(url, "i0", slice_amount=HOLD, idle_s=0.0)
    hold = await node.admit(uid)  # leases one hold, and refills one more in the background
    async with asyncio.timeout(5):
        while node.leases.refilling:
            await asyncio.sleep(0.01)
    assert node.leases.leased[uid] == 2 * HOLD
    await node.settle(hold, "c1", 3 * HOLD)  # overran its hold, and the lease
    assert node.leases.leased[uid] == 0
    assert await money(conn, uid) == (7 * HOLD, 0, 0, 7 * HOLD)
    await node.leases.tend(node.credits.holding)
    assert uid not in node.leases.leased
    assert await conn.fetchval("SELECT count(*) FROM credit_leases") == 0
    await node.stop()


async def test_a_lease_the_database_cannot_answer_fails_the_call_with_503(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 10 * HOLD)
    node = await instance(url, "i0")
    pid = node.store._conn.get_server_pid()
    assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    with pytest.raises(ServiceUnavailable) as info:
        await asyncio.wait_for(node.admit(uid), 10)
    assert info.value.status == 503 and info.value.code == "credits_unavailable"
    await node.crash()


async def test_an_instance_that_cannot_renew_stops_admitting_against_its_lease(
    db: tuple[str, asyncpg.Connection],
) -> None:
    """Past its TTL unrenewed, a lease may have been reclaimed by another instance: the holder
    admits nothing more against it until it has leased again."""
    url, conn = db
    uid = await new_user(conn, "ada", 10 * HOLD)
    node = await instance(url, "i0", slice_amount=10 * HOLD, ttl_s=0.3)
    await node.admit(uid)
    assert isinstance(node.credits.admit(uid, "p", "m", "chat", dict(BODY)), Hold)
    await asyncio.sleep(0.35)  # no upkeep ran: the lease is past its expiry
    assert node.leases.usable(uid) == 0
    pending = node.credits.admit(uid, "p", "m", "chat", dict(BODY))
    assert not isinstance(pending, Hold)  # it has to lease again, as any call short of lease
    await node.stop()


async def test_an_instance_restarted_under_its_name_takes_back_what_it_leased_before(
    db: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = db
    uid = await new_user(conn, "ada", 6 * HOLD)
    before = await instance(url, "host:/var/lib/hub.db.pending", slice_amount=6 * HOLD)
    await before.admit(uid)
    await before.crash()  # kill -9: its lease stays, unexpired
    after = await instance(url, "host:/var/lib/hub.db.pending", slice_amount=6 * HOLD)
    assert await after.leases.recover() == 1  # at start, before serving
    assert (await money(conn, uid))[1:3] == (0, 0)
    for _ in range(6):  # the whole balance, at once: no wait for the old lease's expiry
        await after.admit(uid)
    await after.stop()
