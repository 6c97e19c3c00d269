"""Key scopes through the real app: an expiry (401 key_expired), a model allow-list of
globs (403 model_not_allowed) and a spend cap per UTC day or month (402 key_budget_exceeded)
held like the balance, so that calls at once cannot overshoot it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
import openai
import pytest

from hubproxy.api.state import BUDGETS, KEYS
from hubproxy.app import start
from hubproxy.cli.main import main
from hubproxy.gateway.auth import Scope, hash_key
from hubproxy.limits.budgets import Budgets, day_start, month_start, period_end
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_billing import grant, ledger_agrees

MESSAGES = [{"role": "user", "content": "hi"}]
# Output at 1000 micro-credits a token, input free: with max_tokens 4 a call holds 4000, and
# the fake upstream writes 4 tokens (USAGE), so it costs the same 4000.
RATE = {"model": "up/ok", "input": "0", "output": "1000"}
CALL = 4000
BODY = {"model": "up/ok", "messages": MESSAGES, "max_tokens": 4}


def cli(hub: Hub, *args: str) -> int:
    return main([*args, "--config", str(hub.settings.source)])


def scope(hub: Hub) -> Scope:
    """The scope the running server holds for the test key."""
    principal = hub.app[KEYS]._by_hash[hash_key(hub.key)]
    return principal.scope


def providers(base_url: str) -> list[dict[str, Any]]:
    return [
        {"name": "demo", "type": "fake", "models": ["echo"]},
        {"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-000000"},
    ]


async def post(session: aiohttp.ClientSession, hub: Hub, body: dict[str, Any]) -> tuple[int, bytes]:
    async with session.post(
        hub.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {hub.key}"},
    ) as r:
        return r.status, await r.read()


# --- expiry ---------------------------------------------------------------------------------


async def test_an_expired_key_is_refused(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    client = hub.openai()
    assert cli(hub, "keys", "update", "1", "--ttl", "1s") == 0
    await hub.eventually(lambda: scope(hub).expires_at is not None)  # the server follows
    assert (await client.chat.completions.create(model="demo/echo", messages=MESSAGES)).choices
    await asyncio.sleep(max(0.0, scope(hub).expires_at / 1000 - datetime.now(UTC).timestamp()))
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    assert info.value.code == "key_expired" and "expired at" in info.value.message
    # A dashboard session that holds the key's hash ends with it.
    assert hub.app[KEYS].by_hash(hash_key(hub.key)) is None
    # Given more time, it works again.
    assert cli(hub, "keys", "update", "1", "--expires", "never") == 0
    await hub.eventually(lambda: scope(hub).expires_at is None)
    assert (await client.chat.completions.create(model="demo/echo", messages=MESSAGES)).choices


# --- model allow-list -----------------------------------------------------------------------


async def test_a_model_outside_the_keys_globs_is_refused(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await hub_factory(providers(base_url))
    assert cli(hub, "keys", "update", "1", "--models", "demo/*,up/o?") == 0
    await hub.eventually(lambda: scope(hub).models != ())
    client = hub.openai()
    assert (await client.chat.completions.create(model="demo/echo", messages=MESSAGES)).choices
    assert (await client.chat.completions.create(model="up/ok", messages=MESSAGES)).choices
    with pytest.raises(openai.PermissionDeniedError) as info:
        await client.chat.completions.create(model="up/okay", messages=MESSAGES)
    assert info.value.code == "model_not_allowed"
    assert "'up/okay'" in info.value.message and "demo/*, up/o?" in info.value.message
    assert [r.body["model"] for r in fake.requests] == ["ok"], "refused before the upstream"
    assert len(hub.calls()) == 2, "a refused call is not recorded"
    # The Anthropic face refuses in its own shape.
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            hub.url + "/v1/messages",
            json={"model": "up/okay", "max_tokens": 5, "messages": MESSAGES},
            headers={"x-api-key": hub.key, "anthropic-version": "2023-06-01"},
        ) as r,
    ):
        body = await r.json()
    assert r.status == 403 and body["type"] == "error"


# --- spend cap ------------------------------------------------------------------------------


async def test_50_calls_at_once_against_a_cap_of_5_admit_5(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await hub_factory(providers(upstream[1]), billing={"mode": "credits", "rates": [RATE]})
    grant(hub, "alice", "1")  # the balance covers 250 calls: only the cap binds
    assert cli(hub, "keys", "update", "1", "--budget", f"{5 * CALL / 1e6:.3f}/day") == 0
    await hub.eventually(lambda: scope(hub).budget == 5 * CALL)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        results = await asyncio.gather(*(post(s, hub, BODY) for _ in range(50)))
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 5 and statuses.count(402) == 45
        refused = next(raw for status, raw in results if status == 402)
        tomorrow = datetime.fromtimestamp(period_end("day", _now()) / 1000, UTC)
        assert b'"code":"key_budget_exceeded"' in refused
        assert f"resets at {tomorrow:%Y-%m-%d} 00:00 UTC".encode() in refused
        # All settled: the cap is spent, and stays so.
        assert (await post(s, hub, BODY))[0] == 402
    [spent] = hub.rows("SELECT sum(credits) FROM model_calls WHERE api_key_id = 1")
    assert spent[0] == 5 * CALL
    assert hub.app[BUDGETS].held(1) == 0, "a hold outlived its call"
    ledger_agrees(hub)

    # A restart loads the spend from the call records: still refused.
    runner, port = await start(hub.settings, port=0)
    try:
        again = Hub(f"http://127.0.0.1:{port}", hub.key, hub.settings, runner)
        assert again.app[BUDGETS].spent(1, "day", _now()) == 5 * CALL
        async with aiohttp.ClientSession() as s:
            status, raw = await post(s, again, BODY)
        assert status == 402 and b"key_budget_exceeded" in raw
    finally:
        await runner.cleanup()


async def test_calls_in_flight_hold_the_cap(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    gated = {**RATE, "model": "up/gated"}
    hub = await hub_factory(providers(base_url), billing={"mode": "credits", "rates": [gated]})
    grant(hub, "alice", "1")
    assert cli(hub, "keys", "update", "1", "--budget", f"{2 * CALL / 1e6:.3f}/day") == 0
    await hub.eventually(lambda: scope(hub).budget == 2 * CALL)
    body = {**BODY, "model": "up/gated", "stream": True}
    async with aiohttp.ClientSession() as s:
        first = [asyncio.ensure_future(post(s, hub, body)) for _ in range(2)]
        await hub.eventually(lambda: len(fake.requests) == 2)
        assert hub.app[BUDGETS].held(1) == 2 * CALL
        status, raw = await post(s, hub, body)  # nothing spent yet, but all of it held
        assert status == 402 and b"0 spent and 0.008 held" in raw
        fake.release.set()
        assert [status for status, _ in await asyncio.gather(*first)] == [200, 200]
    assert hub.app[BUDGETS].held(1) == 0
    ledger_agrees(hub)


async def test_a_monthly_cap_and_what_other_servers_spend(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """Two servers on one database: each follows what the other debits on the key."""
    hub = await hub_factory(providers(upstream[1]), billing={"mode": "credits", "rates": [RATE]})
    grant(hub, "alice", "1")
    assert cli(hub, "keys", "update", "1", "--budget", f"{3 * CALL / 1e6:.3f}/month") == 0
    runner, port = await start(hub.settings, port=0)
    try:
        other = Hub(f"http://127.0.0.1:{port}", hub.key, hub.settings, runner)
        await hub.eventually(lambda: scope(hub).budget == 3 * CALL)
        async with aiohttp.ClientSession() as s:
            assert [(await post(s, other, BODY))[0] for _ in range(2)] == [200, 200]
            await hub.eventually(lambda: hub.app[BUDGETS].spent(1, "month", _now()) == 2 * CALL)
            assert (await post(s, hub, BODY))[0] == 200
            status, raw = await post(s, hub, BODY)
            assert status == 402 and b"a month is used up" in raw
            await hub.eventually(lambda: other.app[BUDGETS].spent(1, "month", _now()) == 3 * CALL)
            assert (await post(s, other, BODY))[0] == 402
    finally:
        await runner.cleanup()


async def test_with_billing_off_the_cap_never_binds(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    assert cli(hub, "keys", "update", "1", "--budget", "0/day") == 0
    await hub.eventually(lambda: scope(hub).budget == 0)
    client = hub.openai()
    for _ in range(3):  # nothing is held or debited: the cap of 0 is never exceeded
        assert (await client.chat.completions.create(model="demo/echo", messages=MESSAGES)).choices


def test_spend_rolls_over_at_the_utc_period_boundary() -> None:
    budgets = Budgets("me")
    jan31 = int(datetime(2027, 1, 31, 23, 59, tzinfo=UTC).timestamp() * 1000)
    feb1 = int(datetime(2027, 2, 1, 0, 0, 1, tzinfo=UTC).timestamp() * 1000)
    budgets.add(1, jan31, 10)
    assert budgets.spent(1, "day", jan31) == 10 and budgets.spent(1, "month", jan31) == 10
    assert budgets.spent(1, "day", feb1) == 0 and budgets.spent(1, "month", feb1) == 0
    budgets.add(1, feb1, 5)
    budgets.add(1, jan31, 7)  # a call of January settling in February: not February's
    assert budgets.spent(1, "day", feb1) == 5 and budgets.spent(1, "month", feb1) == 5
    assert period_end("day", jan31) == feb1 - 1000
    assert period_end("month", jan31) == feb1 - 1000
    dec = int(datetime(2027, 12, 15, tzinfo=UTC).timestamp() * 1000)
    assert datetime.fromtimestamp(period_end("month", dec) / 1000, UTC) == datetime(
        2028, 1, 1, tzinfo=UTC
    )
    assert day_start(feb1) == month_start(feb1) == feb1 - 1000


def _now() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
