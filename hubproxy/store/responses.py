"""Stored Responses API answers: writer ops to keep, delete and prune them, and the reads that
serve GET /v1/responses/{id} and resolve a previous_response_id chain (one query)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader

DAY_MS = 86_400_000
MAX_DEPTH = 100  # the most earlier turns a previous_response_id chain brings back

_PUT = (
    "INSERT INTO responses (id, user_id, model, previous_response_id, input_items, "
    "output_items, response, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
# The chain from `id` back through its ancestors, newest first, each owned by the user and
# at most `depth` turns back; the items are read oldest first.
_CHAIN = (
    "WITH RECURSIVE chain (id, prev, depth) AS ("
    " SELECT id, previous_response_id, 0 FROM responses WHERE id = ? AND user_id = ?"
    " UNION ALL"
    " SELECT r.id, r.previous_response_id, c.depth + 1 FROM responses r"
    " JOIN chain c ON r.id = c.prev WHERE r.user_id = ? AND c.depth + 1 < ?"
    ") SELECT r.input_items, r.output_items FROM chain c JOIN responses r ON r.id = c.id"
    " ORDER BY c.depth DESC"
)


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    user_id: int
    model: str
    previous_response_id: str | None
    response: bytes  # the Response object as JSON
    created_at: int


def put(user_id: int, response: dict[str, Any], input_items: Sequence[Any]) -> Op:
    """Keep a finished Response and the input items of its turn (a second put of the same id
    is a no-op)."""
    previous = response.get("previous_response_id")
    return _PUT, (
        str(response["id"]), user_id, str(response.get("model") or ""),
        previous if isinstance(previous, str) else None,
        orjson.dumps(list(input_items)).decode(),
        orjson.dumps(response.get("output") or []).decode(),
        orjson.dumps(response).decode(), now_ms(),
    )  # fmt: skip


def delete(response_id: str, user_id: int) -> Op:
    """Delete the user's own response; another user's is left alone."""
    return "DELETE FROM responses WHERE id = ? AND user_id = ?", (response_id, user_id)


def prune(keep_days: int, now: int | None = None) -> Op:
    """Drop responses older than `keep_days` days."""
    cutoff = (now_ms() if now is None else now) - keep_days * DAY_MS
    return "DELETE FROM responses WHERE created_at < ?", (cutoff,)


async def get(reader: Reader, response_id: str, user_id: int) -> Stored | None:
    """The user's stored response, or None (unknown, pruned, or another user's)."""
    sql = (
        "SELECT id, user_id, model, previous_response_id, response, created_at "
        "FROM responses WHERE id = ? AND user_id = ?"
    )
    async with reader.execute(sql, (response_id, user_id)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return Stored(
        id=str(row[0]), user_id=int(row[1]), model=str(row[2]),
        previous_response_id=row[3], response=str(row[4]).encode(), created_at=int(row[5]),
    )  # fmt: skip


async def history(
    reader: Reader, response_id: str, user_id: int, max_depth: int = MAX_DEPTH
) -> list[Any] | None:
    """The items of the conversation up to and including `response_id` (each turn's input,
    then its output, oldest turn first), or None when `response_id` is not the user's. The
    walk stops at an ancestor that is gone (pruned or deleted) or `max_depth` turns back."""
    async with reader.execute(_CHAIN, (response_id, user_id, user_id, max_depth)) as cur:
        rows = await cur.fetchall()
    if not rows:
        return None
    items: list[Any] = []
    for input_items, output_items in rows:
        items += orjson.loads(input_items)
        items += orjson.loads(output_items)
    return items
