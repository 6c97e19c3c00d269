"""Where a follower of the ledger is: a cursor that no ledger row can slip behind.

On SQLite one process writes a file, and ids commit in order: the cursor is the last ledger id
read, and the rows after it are the new ones (the cost it always had).

On PostgreSQL ids are taken at insert and seen at commit, and several instances commit in any
order: a row with a smaller id can commit after a larger one was read, and an id cursor would
pass it for ever. There the cursor is the snapshot the follower last read in
(`pg_current_snapshot()`, as text): the rows still to read are exactly those whose transaction
(`credit_ledger.xid`) had not ended in it, `NOT pg_visible_in_snapshot(xid, cursor)`, and a
transaction that had not ended is no older than the snapshot's xmin, which bounds the scan
(index `credit_ledger_xid`). Each read takes the new snapshot in the same transaction as the
rows, so a row is read once: in the first snapshot that sees it. Unlike the meter's
(xid, id) watermark (store/postgres/meter.py), nothing waits for older transactions to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hubproxy.store.reader import Reader


@dataclass(frozen=True, slots=True)
class Cursor:
    """`snapshot` on PostgreSQL (the pg_snapshot read in), else None and `id`, the last
    ledger id read."""

    id: int = 0
    snapshot: str | None = None


def after(cursor: Cursor, alias: str = "l") -> tuple[str, tuple[object, ...]]:
    """The condition (and its parameters) on `alias`'s ledger rows that `cursor` has not read:
    on PostgreSQL the rows its snapshot does not see (run it in a transaction with `start`,
    which gives the next cursor)."""
    if cursor.snapshot is None:
        return f"{alias}.id > ?", (cursor.id,)
    return (
        f"{alias}.xid >= pg_snapshot_xmin(CAST(CAST(? AS text) AS pg_snapshot)) "
        f"AND NOT pg_visible_in_snapshot({alias}.xid, CAST(CAST(? AS text) AS pg_snapshot))",
        (cursor.snapshot, cursor.snapshot),
    )


async def start(conn: Reader, dialect: str) -> Cursor:
    """The cursor of what `conn` sees now. Call it inside the BEGIN ... COMMIT of the reads it
    pairs with (balances, sums, or the rows after the last cursor), so that they agree."""
    if dialect == "postgres":
        async with conn.execute("SELECT CAST(pg_current_snapshot() AS text)") as cur:
            row = await cur.fetchone()
        return Cursor(snapshot=str(row[0]))
    async with conn.execute("SELECT coalesce(max(id), 0) FROM credit_ledger") as cur:
        row = await cur.fetchone()
    return Cursor(int(row[0]) if row else 0)


async def read(conn: Reader, sql: str, params: Sequence[Any]) -> tuple[list[Any], Cursor]:
    """PostgreSQL: the rows of `sql` (past a cursor, by `after`) and the cursor after them,
    read in one snapshot."""
    await conn.execute("BEGIN")
    try:
        async with conn.execute(sql, params) as cur:
            rows = list(await cur.fetchall())
        cursor = await start(conn, "postgres")
    finally:
        await conn.execute("COMMIT")
    return rows, cursor
