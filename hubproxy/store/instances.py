"""The instances table on SQLite: each instance's heartbeat, and finding the ones gone silent.

The Registry protocol is what gateway/instances.py drives; store/postgres/instances.py is the
PostgreSQL one (the database's clock, an advisory lock, a connection of its own). Here every
write goes through the one writer and the reads through the server's reader; with one process
per SQLite file there is nobody to take turns with.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from hubproxy.store import calls
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader


@dataclass(frozen=True, slots=True)
class Me:
    """This instance, as its heartbeat row says it."""

    id: str
    host: str
    pid: int
    started_at: int  # Unix ms


class Registry(Protocol):
    async def register(self, me: Me) -> None:
        """At start: this instance's row, with its host, pid and start time."""
        ...

    async def beat(self, me: Me) -> bool:
        """Write the heartbeat. False when the row was gone: another instance took this one
        for dead (and failed its calls) while it was silent; the row is back now."""
        ...

    async def sweep(self, stale: Op) -> bool:
        """Run the stale sweep (calls.sweep_op); False when another instance is running it."""
        ...

    async def reap(self, me: str, silent_ms: int, reason: str) -> list[str] | None:
        """Fail the `processing` calls of every other instance silent for `silent_ms` and
        remove its row; return their ids (each is returned to one caller only), or None when
        another instance is reaping."""
        ...

    async def live(self, silent_ms: int) -> int:
        """How many instances (this one included) wrote a heartbeat in the last `silent_ms`."""
        ...

    async def close(self) -> None: ...


class Commits(Protocol):
    def commit(self, *ops: Op) -> Awaitable[None]: ...


REGISTER = (
    "INSERT INTO instances (id, host, pid, started_at, last_seen) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
    "started_at = excluded.started_at, last_seen = excluded.last_seen"
)
_SILENT = "SELECT id FROM instances WHERE last_seen < ? AND id <> ? ORDER BY id"
_GONE = "DELETE FROM instances WHERE id = ? AND last_seen < ?"
LIVE = "SELECT count(*) FROM instances WHERE last_seen >= ?"


def register_op(me: Me, now: int) -> Op:
    return REGISTER, (me.id, me.host, me.pid, me.started_at, now)


class SqliteRegistry:
    """Registry on SQLite: writes through the writer, reads on the server's reader."""

    def __init__(self, writer: Commits, reader: Reader) -> None:
        self._writer = writer
        self._reader = reader

    async def register(self, me: Me) -> None:
        await self._writer.commit(register_op(me, now_ms()))

    async def beat(self, me: Me) -> bool:
        async with self._reader.execute("SELECT 1 FROM instances WHERE id = ?", (me.id,)) as cur:
            there = await cur.fetchone() is not None
        await self._writer.commit(register_op(me, now_ms()))
        return there

    async def sweep(self, stale: Op) -> bool:
        await self._writer.commit(stale)
        return True

    async def reap(self, me: str, silent_ms: int, reason: str) -> list[str] | None:
        cutoff = now_ms() - silent_ms
        async with self._reader.execute(_SILENT, (cutoff, me)) as cur:
            silent = [str(r[0]) for r in await cur.fetchall()]
        for instance in silent:
            await self._writer.commit(
                calls.fail_of_op(instance, reason), (_GONE, (instance, cutoff))
            )
        return silent

    async def live(self, silent_ms: int) -> int:
        async with self._reader.execute(LIVE, (now_ms() - silent_ms,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        return None
