"""Credit leases in PostgreSQL: leasing, returning, renewing and reclaiming slices of users'
balances (the functions of migrations/postgres/0003_leases.sql), and the op that takes a settled
call's cost out of its lease in the debit's own transaction."""

from __future__ import annotations

import asyncio

import asyncpg

from hubproxy.store.ops import Op

# Run before the debit's insert, in its unit (the writer's `?` placeholders).
CONSUME = "SELECT credit_lease_consume(?, ?, ?, ?)"


def consume(instance: str, user_id: int, call_id: str, amount: int) -> Op:
    """A settled call's cost (micro-credits, > 0) out of `instance`'s lease of the user."""
    return CONSUME, (instance, user_id, call_id, amount)


class LeaseStore:
    """The lease statements on one connection of their own (not the writer's: each is a round
    trip whose answer the caller waits for). One statement at a time: a connection runs one."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()

    async def lease(
        self, *, instance: str, user_id: int, want: int, need: int, expires_at: int
    ) -> int:
        """Lease up to `want` and at least `need`; what was leased (0: not that much is free)."""
        async with self._lock:
            got = await self._conn.fetchval(
                "SELECT credit_lease($1, $2, $3, $4, $5)",
                instance, user_id, want, need, expires_at,
            )  # fmt: skip
        return int(got or 0)

    async def give_back(self, *, instance: str, user_id: int, amount: int | None) -> int:
        """Return up to `amount` of a lease (None: all of it); what was returned."""
        async with self._lock:
            got = await self._conn.fetchval(
                "SELECT credit_lease_return($1, $2, $3)", instance, user_id, amount
            )
        return int(got or 0)

    async def renew(self, *, instance: str, expires_at: int) -> dict[int, int]:
        """Push back the expiry of every lease `instance` holds; what it still holds, by user
        (a lease missing here was reclaimed: its holder was taken for dead)."""
        async with self._lock:
            rows = await self._conn.fetch(
                "UPDATE credit_leases SET expires_at = $2 WHERE instance = $1 "
                "RETURNING user_id, amount",
                instance,
                expires_at,
            )
        return {int(r["user_id"]): int(r["amount"]) for r in rows}

    async def reclaim(self, *, now: int, instance: str | None = None) -> int:
        """Free the leases expired by `now`, or (`instance` given) every lease of that instance
        (shutting down, or known dead); how many."""
        async with self._lock:
            got = await self._conn.fetchval("SELECT credit_lease_reclaim($1, $2)", now, instance)
        return int(got or 0)

    async def close(self) -> None:
        await self._conn.close()
