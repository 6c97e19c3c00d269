"""Stored responses: kept, read back by their owner only, chained by previous_response_id,
deleted and pruned (migration 0007 and store/responses.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
import pytest

from hubproxy.config import DatabaseSettings
from hubproxy.store import db, responses
from hubproxy.store.clock import now_ms
from hubproxy.store.migrate import migrate
from hubproxy.store.ops import Op, apply

ALICE, BOB = 1, 2


class Store:
    def __init__(self, path: Path, reader: aiosqlite.Connection) -> None:
        self.conn = db.connect(DatabaseSettings(path=path))
        migrate(self.conn)
        self.reader = reader

    def write(self, *ops: Op) -> None:
        apply(self.conn, ops)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    settings = DatabaseSettings(path=tmp_path / "r.db")
    db.connect(settings).close()
    reader = await db.open_reader(settings)
    try:
        yield Store(settings.path, reader)
    finally:
        await reader.close()


def turn(rid: str, previous: str | None, text: str) -> tuple[dict[str, Any], list[Any]]:
    """A response and its input items, as the face would keep them."""
    inputs = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    ]
    output = [
        {
            "id": f"msg_{rid}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": f"re: {text}", "annotations": []}],
        }
    ]
    response = {
        "id": rid,
        "object": "response",
        "model": "claude/x",
        "status": "completed",
        "previous_response_id": previous,
        "output": output,
    }
    return response, inputs  # fmt: skip


def put(store: Store, user: int, rid: str, previous: str | None, text: str) -> None:
    response, inputs = turn(rid, previous, text)
    store.write(responses.put(user, response, inputs))


def texts(items: list[Any] | None) -> list[str]:
    assert items is not None
    return [part["text"] for item in items for part in item["content"]]


async def test_round_trip_and_ownership(store: Store) -> None:
    response, inputs = turn("resp_a", None, "hi")
    store.write(responses.put(ALICE, response, inputs))
    got = await responses.get(store.reader, "resp_a", ALICE)
    assert got is not None and orjson.loads(got.response) == response
    assert (got.user_id, got.model, got.previous_response_id) == (ALICE, "claude/x", None)
    assert abs(got.created_at - now_ms()) < 60_000
    assert await responses.get(store.reader, "resp_a", BOB) is None  # another user's: unseen
    assert await responses.get(store.reader, "resp_nope", ALICE) is None
    assert await responses.history(store.reader, "resp_a", BOB) is None
    store.write(responses.put(ALICE, {**response, "model": "other"}, []))  # same id: no-op
    again = await responses.get(store.reader, "resp_a", ALICE)
    assert again is not None and again.model == "claude/x"


async def test_history_walks_the_chain_oldest_first(store: Store) -> None:
    put(store, ALICE, "resp_1", None, "one")
    put(store, ALICE, "resp_2", "resp_1", "two")
    put(store, ALICE, "resp_3", "resp_2", "three")
    put(store, ALICE, "resp_x", "resp_1", "branch")  # a second branch from turn one
    items = await responses.history(store.reader, "resp_3", ALICE)
    assert texts(items) == ["one", "re: one", "two", "re: two", "three", "re: three"]
    assert texts(await responses.history(store.reader, "resp_x", ALICE)) == [
        "one", "re: one", "branch", "re: branch",
    ]  # fmt: skip
    recent = await responses.history(store.reader, "resp_3", ALICE, max_depth=2)
    assert texts(recent) == ["two", "re: two", "three", "re: three"]


async def test_history_never_crosses_into_another_users_responses(store: Store) -> None:
    put(store, BOB, "resp_b", None, "bob's secret")
    put(store, ALICE, "resp_a", "resp_b", "alice")  # names Bob's response as its previous
    assert texts(await responses.history(store.reader, "resp_a", ALICE)) == ["alice", "re: alice"]


async def test_delete_is_the_owners_only(store: Store) -> None:
    put(store, ALICE, "resp_1", None, "one")
    put(store, ALICE, "resp_2", "resp_1", "two")
    store.write(responses.delete("resp_1", BOB))
    assert await responses.get(store.reader, "resp_1", ALICE) is not None
    store.write(responses.delete("resp_1", ALICE))
    assert await responses.get(store.reader, "resp_1", ALICE) is None
    # the chain stops where an ancestor is gone
    assert texts(await responses.history(store.reader, "resp_2", ALICE)) == ["two", "re: two"]


async def test_prune_by_age(store: Store) -> None:
    put(store, ALICE, "resp_old", None, "old")
    put(store, ALICE, "resp_new", None, "new")
    day = responses.DAY_MS
    store.conn.execute(
        "UPDATE responses SET created_at = created_at - ? WHERE id = 'resp_old'", (31 * day,)
    )
    store.write(responses.prune(keep_days=30))
    assert await responses.get(store.reader, "resp_old", ALICE) is None
    assert await responses.get(store.reader, "resp_new", ALICE) is not None
    store.write(responses.prune(keep_days=0, now=now_ms() + day))
    assert await responses.get(store.reader, "resp_new", ALICE) is None
