"""The ledger's followers on a real PostgreSQL (issue #12): the balances (`ledger.snapshot` /
`ledger.tail`, for Credits.follow) and the keys' spend (`db.key_spend` / `db.key_debits`, for
Budgets.follow). A debit whose id is smaller than one already followed, committed later (two
connections, as two instances), is still followed, and exactly once; and a start read while a
smaller id is in flight neither loses it nor counts the larger one twice."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hubproxy.billing.credits import Credits, RateBook
from hubproxy.limits.budgets import Budgets
from hubproxy.store import accounts, db, ledger
from hubproxy.store.clock import now_ms
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.reader import PgReader, create_pool
from hubproxy.store.postgres.sql import to_postgres
from tests.billing.instances import new_user
from tests.pg import Server
from tests.store.backends import fresh_pg_database

_calls = itertools.count(1)
OTHER = "other-instance"  # the source the debits are written under; the followers are "me"


@pytest.fixture
async def pg(
    pg_template: Server,
) -> AsyncIterator[tuple[PgReader, asyncpg.Connection, asyncpg.Connection, int, int]]:
    """The server's reader; two writers' connections (`early`, `late`); two users with a key
    each."""
    url = await fresh_pg_database(pg_template)
    conn = await schema.connect(url)
    reader = PgReader(await create_pool(url, max_size=2))
    early, late = await schema.connect(url), await schema.connect(url)
    try:
        keys = []
        for name in ("ada", "bob"):
            uid = await new_user(conn, name, 10**9)
            sql, params = accounts.create_key(uid, f"hash-{name}", f"hk-{name}", name)
            await conn.execute(to_postgres(sql), *params)
            keys.append(int(await conn.fetchval("SELECT id FROM api_keys WHERE user_id=$1", uid)))
        yield reader, early, late, keys[0], keys[1]
    finally:
        await early.close()
        await late.close()
        await conn.close()
        await reader.close()


async def debit(conn: asyncpg.Connection, key_id: int, amount: int) -> int:
    """A settled call of `key_id`'s and its debit (another instance's), as its writer commits
    them: in one transaction (`conn`'s, when it has one open). Returns the ledger id."""
    call_id = f"call-{next(_calls)}"
    uid = int(await conn.fetchval("SELECT user_id FROM api_keys WHERE id = $1", key_id))
    await conn.execute(
        "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
        "status, created_at, credits) VALUES ($1, $1, $2, $3, 'p', 'm', 'chat', 'success', $4, $5)",
        call_id,
        uid,
        key_id,
        now_ms(),
        amount,
    )
    sql, params = ledger.debit(uid, call_id, amount, OTHER)
    await conn.execute(to_postgres(sql), *params)
    return int(await conn.fetchval("SELECT id FROM credit_ledger WHERE call_id = $1", call_id))


async def test_a_smaller_id_committed_later_is_followed_once_by_both_followers(
    pg: tuple[PgReader, asyncpg.Connection, asyncpg.Connection, int, int],
) -> None:
    reader, early, late, ada, bob = pg
    credits, budgets = Credits("credits", RateBook(), 100, "me"), Budgets("me")
    credits.load(*await ledger.snapshot(reader, "postgres"))
    now = now_ms()
    spend, cursor = await db.key_spend(reader, now - 60_000, now - 60_000, "postgres")
    budgets.load(spend, now, cursor)
    ada_user = int(await early.fetchval("SELECT user_id FROM api_keys WHERE id = $1", ada))
    bob_user = int(await late.fetchval("SELECT user_id FROM api_keys WHERE id = $1", bob))

    async def follow() -> None:
        credits.follow(*await ledger.tail(reader, credits.cursor, credits.source))
        budgets.follow(*await db.key_debits(reader, budgets.cursor, budgets.source))

    slow = early.transaction()
    await slow.start()
    small = await debit(early, ada, 3)  # the smaller id, not committed yet
    large = await debit(late, bob, 5)  # the larger id, committed first
    assert small < large
    await follow()
    assert credits.balances[bob_user] == 10**9 - 5
    assert budgets.spent(bob, "day", now) == 5
    assert credits.balances[ada_user] == 10**9 and budgets.spent(ada, "day", now) == 0

    await slow.commit()  # an id cursor is past `small` by now, and would skip it for ever
    await follow()
    assert credits.balances[ada_user] == 10**9 - 3
    assert budgets.spent(ada, "day", now) == 3
    for _ in range(2):  # and nothing is followed twice
        await follow()
    assert credits.balances == {ada_user: 10**9 - 3, bob_user: 10**9 - 5}
    assert (budgets.spent(ada, "day", now), budgets.spent(bob, "day", now)) == (3, 5)
    assert (budgets.spent(ada, "month", now), budgets.spent(bob, "month", now)) == (3, 5)


async def test_the_start_read_while_a_smaller_id_is_in_flight_loses_and_doubles_nothing(
    pg: tuple[PgReader, asyncpg.Connection, asyncpg.Connection, int, int],
) -> None:
    """The starting cursor is read in the snapshot of the balances and the sums it pairs with:
    what they count is not followed again, and what they miss is followed."""
    reader, early, late, ada, bob = pg
    ada_user = int(await early.fetchval("SELECT user_id FROM api_keys WHERE id = $1", ada))
    bob_user = int(await late.fetchval("SELECT user_id FROM api_keys WHERE id = $1", bob))
    slow = early.transaction()
    await slow.start()
    small = await debit(early, ada, 3)  # in flight while the followers start
    large = await debit(late, bob, 5)  # committed: in the start's balances and sums
    assert small < large
    credits, budgets = Credits("credits", RateBook(), 100, "me"), Budgets("me")
    credits.load(*await ledger.snapshot(reader, "postgres"))
    now = now_ms()
    spend, cursor = await db.key_spend(reader, now - 60_000, now - 60_000, "postgres")
    budgets.load(spend, now, cursor)
    assert credits.balances == {ada_user: 10**9, bob_user: 10**9 - 5}
    assert (budgets.spent(ada, "day", now), budgets.spent(bob, "day", now)) == (0, 5)

    await slow.commit()
    for _ in range(3):
        credits.follow(*await ledger.tail(reader, credits.cursor, credits.source))
        budgets.follow(*await db.key_debits(reader, budgets.cursor, budgets.source))
    assert credits.balances == {ada_user: 10**9 - 3, bob_user: 10**9 - 5}
    assert (budgets.spent(ada, "day", now), budgets.spent(bob, "day", now)) == (3, 5)

    # A debit this process wrote (its own source) is not followed: it counted it already.
    sql, params = ledger.debit(ada_user, "mine", 7, "me")
    await late.execute(to_postgres(sql), *params)
    credits.follow(*await ledger.tail(reader, credits.cursor, credits.source))
    assert credits.balances[ada_user] == 10**9 - 3
