"""Meter export: every settled debit reaches the webhook once, through failures and restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hubproxy.store import ledger
from tests.conftest import HubFactory, add_key
from tests.test_billing import grant

MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass
class Webhook:
    """A payment system's usage endpoint: fails while `down`, dedups by idempotency key."""

    down: bool = True
    failures: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    repeats: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        if self.down:
            self.failures += 1
            return web.json_response({"error": "down"}, status=503)
        for event in body["events"]:
            key = event["idempotency_key"]
            if key in self.accepted:
                self.repeats += 1  # a receiver drops these; we count them to be sure
            self.accepted[key] += 1
        return web.json_response({"ok": True})


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/usage", hook.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield hook, str(server.make_url("/usage"))
    await server.close()


async def test_events_survive_failures_and_a_restart(
    hub_factory: HubFactory, webhook: tuple[Webhook, str]
) -> None:
    hook, url = webhook
    sections = {
        "billing": {
            "mode": "credits",
            "rates": [{"model": "demo/echo", "input": "1", "output": "1"}],
            "meter": {"url": url, "batch_size": 4, "interval_s": 0.02, "max_backoff_s": 0.1},
        }
    }
    first = await hub_factory(**sections)
    grant(first, "alice", "1")
    client = first.openai()
    for _ in range(100):  # bounded: wait for the server to see the grant
        try:
            await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
            break
        except openai.APIStatusError:  # 402 until then
            await asyncio.sleep(0.05)
    for _ in range(9):
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    await first.eventually(lambda: hook.failures >= 3)  # retried with backoff
    assert first.rows("SELECT ledger_id FROM meter_cursor")[0][0] == 0, "nothing accepted yet"
    await first.runner.cleanup()  # the server stops with the webhook still down

    hook.down = False
    second = await hub_factory(**sections)  # same database: the outbox is still there
    keys = {r["id"] for r in second.calls() if r["credits"] > 0}
    assert len(keys) == 10
    await second.eventually(lambda: set(hook.accepted) == keys, seconds=5)
    last_debit = second.rows("SELECT max(id) FROM credit_ledger WHERE kind = 'debit'")[0][0]
    await second.eventually(
        lambda: second.rows("SELECT ledger_id FROM meter_cursor")[0][0] == last_debit
    )
    assert hook.repeats == 0 and set(hook.accepted.values()) == {1}
    add_key(second.settings, "someone")  # the server keeps running; nothing is sent again
    await asyncio.sleep(0.2)
    assert hook.repeats == 0


async def test_the_export_restarts_after_an_error_that_is_not_http(
    hub_factory: HubFactory, webhook: tuple[Webhook, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database under the exporter fails twice (not an HTTP error): the export is logged,
    restarted with backoff, and still delivers every event once."""
    hook, url = webhook
    hook.down = False
    failures = 0
    pending = ledger.meter_pending

    async def flaky(conn: Any, limit: int) -> list[dict[str, Any]]:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise sqlite3.OperationalError("disk I/O error")
        return await pending(conn, limit)

    monkeypatch.setattr(ledger, "meter_pending", flaky)
    sections = {
        "billing": {
            "mode": "credits",
            "rates": [{"model": "demo/echo", "input": "1", "output": "1"}],
            "meter": {"url": url, "batch_size": 4, "interval_s": 0.02, "max_backoff_s": 0.1},
        }
    }
    hub = await hub_factory(**sections)
    grant(hub, "alice", "1")
    client = hub.openai()
    for _ in range(100):  # bounded: wait for the server to see the grant
        try:
            await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
            break
        except openai.APIStatusError:  # 402 until then
            await asyncio.sleep(0.05)
    for _ in range(5):
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    keys = {r["id"] for r in hub.calls() if r["credits"] > 0}
    assert len(keys) == 6
    await hub.eventually(lambda: set(hook.accepted) == keys, seconds=5)
    assert failures == 2 and set(hook.accepted.values()) == {1}
