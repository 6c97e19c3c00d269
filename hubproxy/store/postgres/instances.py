"""The instances table on PostgreSQL: heartbeats on the database's clock (hosts' clocks may
disagree), and the stale sweep and the reaping of silent instances under an advisory lock, so
that one instance at a time runs them. A connection of its own, dropped when a round fails
(lost, cancelled, or left in an odd state) and opened again by the next."""

from __future__ import annotations

import asyncpg

from hubproxy.store import calls
from hubproxy.store.instances import Me
from hubproxy.store.ops import Op
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.sql import to_postgres

# pg_try_advisory_xact_lock's key for the sweeps (the migrations' lock is another).
SWEEP_LOCK = 0x6875_6273_7770
_NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_BEAT = f"UPDATE instances SET last_seen = {_NOW} WHERE id = $1"
_REGISTER = (
    "INSERT INTO instances (id, host, pid, started_at, last_seen) "
    f"VALUES ($1, $2, $3, $4, {_NOW}) "
    "ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
    "started_at = excluded.started_at, last_seen = excluded.last_seen"
)
_REAP = f"DELETE FROM instances WHERE last_seen < {_NOW} - $1 AND id <> $2 RETURNING id"
_FAIL = to_postgres(calls.FAIL_OF)
_LIVE = f"SELECT count(*) FROM instances WHERE last_seen >= {_NOW} - $1"


class PgRegistry:
    """store.instances.Registry on PostgreSQL."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._conn: asyncpg.Connection | None = None

    async def register(self, me: Me) -> None:
        conn = await self._connection()
        try:
            await conn.execute(_REGISTER, me.id, me.host, me.pid, me.started_at)
        except BaseException:
            await self._drop()  # a failed round leaves the connection suspect
            raise

    async def beat(self, me: Me) -> bool:
        conn = await self._connection()
        try:
            if await conn.execute(_BEAT, me.id) == "UPDATE 1":
                return True
            await conn.execute(_REGISTER, me.id, me.host, me.pid, me.started_at)
            return False
        except BaseException:
            await self._drop()  # a failed round leaves the connection suspect
            raise

    async def sweep(self, stale: Op) -> bool:
        conn = await self._connection()
        try:
            async with conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK):
                    return False
                await conn.execute(to_postgres(stale[0]), *stale[1])
                return True
        except BaseException:
            await self._drop()  # a failed round leaves the connection suspect
            raise

    async def reap(self, me: str, silent_ms: int, reason: str) -> list[str] | None:
        conn = await self._connection()
        try:
            async with conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK):
                    return None
                silent = [str(r[0]) for r in await conn.fetch(_REAP, silent_ms, me)]
                for instance in silent:
                    await conn.execute(_FAIL, *calls.fail_of_op(instance, reason)[1])
                return silent
        except BaseException:
            await self._drop()  # a failed round leaves the connection suspect
            raise

    async def live(self, silent_ms: int) -> int:
        conn = await self._connection()
        try:
            return int(await conn.fetchval(_LIVE, silent_ms))
        except BaseException:
            await self._drop()  # a failed round leaves the connection suspect
            raise

    async def close(self) -> None:
        await self._drop()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await schema.connect(self._url, timeout_s=self._timeout_s)
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
