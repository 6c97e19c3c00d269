"""Several in-process "instances" on one PostgreSQL database: each its own writer, lease
connection and Credits, as separate processes would have."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from hubproxy.billing.credits import Credits, Hold, Pending, RateBook
from hubproxy.billing.leases import Leases
from hubproxy.providers.base import Usage
from hubproxy.store import accounts, ledger
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.leases import LeaseStore
from hubproxy.store.postgres.sql import to_postgres
from hubproxy.store.postgres.writer import PgWriter

RATE = {"provider": "p", "model": "m", "type": "chat", "input": "1", "output": "1"}
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
HOLD = 18  # "hi" is 8 prompt tokens estimated, + 10 out, at one micro-credit a token


@dataclass
class Instance:
    name: str
    writer: PgWriter
    store: LeaseStore
    leases: Leases
    credits: Credits

    async def admit(self, user_id: int) -> Hold:
        hold = self.credits.admit(user_id, "p", "m", "chat", BODY)
        if isinstance(hold, Pending):
            hold = await hold.wait()
        assert hold is not None
        return hold

    async def settle(self, hold: Hold, call_id: str, tokens: int) -> None:
        _, ops = self.credits.settle(hold, call_id, Usage(tokens - tokens // 2, tokens // 2))
        if ops:
            await self.writer.commit(*ops)

    async def stop(self) -> None:
        """A clean shutdown: every debit committed, then the leases given back."""
        await self.writer.close()
        await self.leases.close()

    async def crash(self) -> None:
        """Gone without a word: its connections drop, its leases stay until they expire."""
        await self.leases._tasks.stop()
        task = self.writer._task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.writer._conn.terminate()
        self.store._conn.terminate()


async def instance(url: str, name: str, *, slice_amount: int = 4 * HOLD, **kw: float) -> Instance:
    writer = PgWriter(await schema.connect(url))
    writer.start()
    store = LeaseStore(await schema.connect(url))
    leases = Leases(store, instance=name, slice_amount=slice_amount, **kw)
    rates = RateBook()
    rates.replace([RATE])
    credits = Credits("credits", rates, 100, name)
    credits.leases = leases
    return Instance(name, writer, store, leases, credits)


async def new_user(conn: asyncpg.Connection, name: str, grant: int) -> int:
    sql, params = accounts.create_user(name, "member")
    await conn.execute(to_postgres(sql), *params)
    uid = await conn.fetchval("SELECT id FROM users WHERE name = $1", name)
    if grant:
        sql, params = ledger.entry(int(uid), "grant", grant, source="")
        await conn.execute(to_postgres(sql), *params)
    return int(uid)


async def money(conn: asyncpg.Connection, user_id: int) -> tuple[int, int, int, int]:
    """balance, leased, the sum of the lease rows, the sum of the ledger."""
    row = await conn.fetchrow(
        "SELECT balance, leased, "
        "(SELECT coalesce(sum(amount), 0) FROM credit_leases WHERE user_id = $1) AS rows, "
        "(SELECT coalesce(sum(amount), 0) FROM credit_ledger WHERE user_id = $1) AS ledger "
        "FROM credit_balances WHERE user_id = $1",
        user_id,
    )
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
