"""Admin grants: the balance moves only once the ledger row commits, and the row names the
admin who made it, which the grant history shows."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.conftest import Hub, HubFactory, add_key
from tests.test_billing import grant as cli_grant


async def api(
    hub: Hub, method: str, path: str, key: str, *, json: Any = None, **params: str
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method,
            hub.url + path,
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {key}"},
        ) as r,  # fmt: skip
    ):
        return r.status, await r.json()


@pytest.fixture
async def billed(hub_factory: HubFactory) -> Hub:
    return await hub_factory(billing={"mode": "credits"})


async def test_a_grant_moves_the_balance_only_once_committed(billed: Hub) -> None:
    hub = billed
    root = add_key(hub.settings, "root", "admin")

    async def balance() -> int:
        status, body = await api(hub, "GET", "/api/user/balance", hub.key)
        assert status == 200
        return int(body["balance"])

    def ledger_rows() -> int:
        return int(hub.rows("SELECT count(*) FROM credit_ledger")[0][0])

    # Another process holds the write lock, and will make the grant's insert fail.
    lock = hub.db()
    lock.execute("BEGIN IMMEDIATE")
    lock.execute(
        "CREATE TRIGGER no_grants BEFORE INSERT ON credit_ledger WHEN NEW.kind = 'grant' "
        "BEGIN SELECT RAISE(ABORT, 'grants refused'); END"
    )
    posting = asyncio.create_task(
        api(hub, "POST", "/api/admin/credits", root, json={"user": "alice", "amount": "5"})
    )
    try:
        await asyncio.sleep(0.3)  # the grant waits for the lock, its row not yet committed
        assert not posting.done()
        assert await balance() == 0, "nothing may be spent against a grant not yet recorded"
    finally:
        lock.execute("COMMIT")  # the lock goes; the trigger stays, and the insert fails
    status, body = await asyncio.wait_for(posting, 10)
    assert status == 503 and body["error"]["type"]
    assert await balance() == 0 and ledger_rows() == 0

    lock.execute("DROP TRIGGER no_grants")
    lock.close()
    status, body = await api(
        hub, "POST", "/api/admin/credits", root,
        json={"user": "alice", "amount": "5", "note": "welcome"},
    )  # fmt: skip
    assert status == 200 and body["actor"] == "root" and body["balance"] == 5_000_000
    assert await balance() == 5_000_000
    [row] = hub.rows(
        "SELECT l.amount, l.note, a.name AS actor FROM credit_ledger l "
        "JOIN users a ON a.id = l.actor_user_id"
    )
    assert (row["amount"], row["note"], row["actor"]) == (5_000_000, "welcome", "root")


async def test_the_grant_history_names_who_granted(billed: Hub) -> None:
    hub = billed
    root = add_key(hub.settings, "root", "admin")
    bob = add_key(hub.settings, "bob")
    cli_grant(hub, "alice", "1")  # from the CLI: no admin behind it
    for user, amount, note in (("alice", "2", "bonus"), ("bob", "3", ""), ("alice", "4", "x")):
        status, _ = await api(
            hub, "POST", "/api/admin/credits", root,
            json={"user": user, "amount": amount, "note": note},
        )  # fmt: skip
        assert status == 200
    await api(hub, "POST", "/api/admin/credits", root,
              json={"user": "alice", "amount": "-1", "kind": "adjustment"})  # fmt: skip

    status, body = await api(hub, "GET", "/api/admin/credits", root, user="alice")
    assert status == 200 and body["next_cursor"] is None
    got = [(g["user"], g["kind"], g["amount_credits"], g["note"], g["actor"], g["via"])
           for g in body["data"]]  # fmt: skip
    assert got == [
        ("alice", "adjustment", "-1", "", "root", "api"),
        ("alice", "grant", "4", "x", "root", "api"),
        ("alice", "grant", "2", "bonus", "root", "api"),
        ("alice", "grant", "1", "", None, "cli"),
    ]
    assert all(g["created_at"].endswith("Z") for g in body["data"])

    pages, cursor = [], None
    for _ in range(10):  # bounded paging over everyone's grants
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page = await api(hub, "GET", "/api/admin/credits", root, **params)
        assert status == 200
        pages += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(pages) == 5 and [g["user"] for g in pages].count("bob") == 1

    status, body = await api(hub, "GET", "/api/admin/credits", bob)
    assert status == 404 and body["error"]["code"] == "unknown_route"  # a member: no such route
    status, body = await api(hub, "GET", "/api/admin/credits", root, cursor="x")
    assert status == 400 and body["error"]["param"] == "cursor"
