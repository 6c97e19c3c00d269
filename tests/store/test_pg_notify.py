"""LISTEN/NOTIFY: a committed change to keys, rates or the catalogue reaches a listener at
once; a dropped listener connects again and catches up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hubproxy.store import accounts, ledger
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.notify import Listener
from tests.store.backends import Store
from tests.store.test_backends import user

pytestmark = pytest.mark.parametrize("store", ["postgres"], indirect=True)


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    async def __call__(self) -> None:
        self.count += 1
        self.changed.set()

    async def next(self, within_s: float = 2.0) -> None:
        """The next call, within the 2 s every instance must see a change in."""
        await asyncio.wait_for(self.changed.wait(), within_s)
        self.changed.clear()


@pytest.fixture
async def listening(store: Store) -> AsyncIterator[tuple[Listener, Calls]]:
    calls = Calls()
    listener = Listener(store.url, calls, first_backoff_s=0.05, ping_s=0.5)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.connected.wait(), 5)
    await calls.next()  # at each connection: catch up
    yield listener, calls
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_committed_change_is_heard_at_once(
    store: Store, listening: tuple[Listener, Calls]
) -> None:
    _, calls = listening
    uid = await user(store)  # users' inserts bump nothing
    await store.writer.commit(accounts.create_key(uid, "h1", "sk-aaa", "k"))
    await calls.next()
    await store.writer.commit(ledger.set_rate("up", "m", "chat", {"input": "1", "output": "2"}))
    await calls.next()
    await store.writer.commit(("UPDATE api_keys SET revoked_at = 1 WHERE key_hash = 'h1'", ()))
    await calls.next()
    # What bumps no revision is not heard.
    await store.writer.commit(("UPDATE instances SET last_seen = 1", ()))
    with pytest.raises(TimeoutError):
        await calls.next(within_s=0.3)


async def test_a_dropped_listener_connects_again_and_catches_up(
    store: Store, listening: tuple[Listener, Calls]
) -> None:
    listener, calls = listening
    before = listener.server_pid
    conn = await schema.connect(store.url)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", before)
    finally:
        await conn.close()
    await calls.next(within_s=5)  # the new connection's catch-up
    assert listener.connected.is_set() and listener.server_pid != before
    uid = await user(store)
    await store.writer.commit(accounts.create_key(uid, "h2", "sk-bbb", "k"))
    await calls.next()
