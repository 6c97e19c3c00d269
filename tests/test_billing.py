"""Credit billing: exact money, admission without overdraft, settlement once, the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from hubproxy import money
from hubproxy.api.state import CREDITS, READER
from hubproxy.billing import prices
from hubproxy.errors import BadRequest
from hubproxy.providers.base import Usage
from hubproxy.store import ledger
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import USAGE, FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


# --- money arithmetic ------------------------------------------------------------------------


def test_amounts_parse_exactly_or_not_at_all() -> None:
    assert money.parse_amount("25") == 25_000_000
    assert money.parse_amount("0.000001") == 1
    assert money.parse_amount(0.15) == 150_000
    assert money.parse_amount("1e-6") == 1
    for bad in ("0.0000001", "-1", "abc", "NaN", "Infinity", True, None, "1.2.3"):
        with pytest.raises(BadRequest):
            money.parse_amount(bad)
    assert money.format_amount(1) == "0.000001"
    assert money.format_amount(25_500_000) == "25.5"
    assert money.format_amount(0) == "0"


def test_cost_rounds_up_once_per_call() -> None:
    rate = prices.Rate.parse("0.15", "0.6")
    # 1 token at 0.15 micro-credits is 0.15: a call never costs less than it used -> 1.
    assert prices.cost(rate, Usage(1, 0)) == 1
    # 10 tokens: 1.5 -> 2; rounding happens once on the sum, not per part: 0.15 + 0.6 -> 1.
    assert prices.cost(rate, Usage(10, 0)) == 2
    assert prices.cost(rate, Usage(1, 1)) == 1
    assert prices.cost(rate, Usage(0, 0)) == 0
    # Exact at scale: a million tokens of each is exactly the rates, in micro-credits.
    assert prices.cost(rate, Usage(1_000_000, 1_000_000)) == 750_000
    huge = prices.Rate.parse("123456.789012", "0")
    assert prices.cost(huge, Usage(10**9, 0)) == 123_456_789_012_000


def test_cached_input_and_images() -> None:
    rate = prices.Rate.parse("2", "8", cached_input="0.5", per_image="0.01")
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=800)
    # 200 x 2 + 800 x 0.5 + 100 x 8 = 1600 micro-credits; 3 images at 10000 each.
    assert prices.cost(rate, usage) == 1600
    assert prices.cost(rate, usage, images=3) == 31_600
    no_cache_rate = prices.Rate.parse("2", "8")
    assert prices.cost(no_cache_rate, usage) == 2800


def test_margin_rates_round_up() -> None:
    assert money.format_amount(prices.rate_with_margin("0.15", "20", "1")) == "0.18"
    # 1 / 3 = 0.333333.. -> rounded up to 0.333334, never shaving the margin.
    assert money.format_amount(prices.rate_with_margin("1", "0", "3")) == "0.333334"
    assert prices.rate_with_margin("2.5", "-100", "1") == 0
    with pytest.raises(BadRequest):
        prices.rate_with_margin("1", "10", "0")


# --- the request path -----------------------------------------------------------------------

BACKENDS = ("sqlite", "postgres")  # the hub tests run on both (tests/conftest.py)
RATE = {"model": "up/gated", "input": "1", "output": "1"}  # one micro-credit per token


async def billed_hub(
    hub_factory: HubFactory, base_url: str, rates: list[dict[str, Any]] | None = None
) -> Hub:
    return await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-000000"},
        ],
        billing={"mode": "credits", "rates": rates if rates is not None else [RATE]},
    )


def grant(hub: Hub, user: str, amount: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hubproxy", "credits", "grant", user, amount,
         "--config", str(hub.settings.source)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def ledger_agrees(hub: Hub) -> None:
    """The balance always equals the sum of the ledger, and each call is debited at most once,
    by exactly what its row says it cost."""
    [row] = hub.rows(
        "SELECT (SELECT coalesce(sum(balance), 0) FROM credit_balances) AS balances, "
        "(SELECT coalesce(sum(amount), 0) FROM credit_ledger) AS ledger"
    )
    assert row["balances"] == row["ledger"]
    debits = hub.rows(
        "SELECT c.credits, l.amount FROM model_calls c "
        "LEFT JOIN credit_ledger l ON l.call_id = c.id AND l.kind = 'debit'"
    )
    for credits, amount in debits:
        assert (amount or 0) == -credits
    assert hub.app[CREDITS].held == {}, "a hold outlived its call"


async def test_unpriced_model_is_refused_when_billing_is_on(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await billed_hub(hub_factory, upstream[1])
    with pytest.raises(openai.PermissionDeniedError) as info:
        await hub.openai().chat.completions.create(model="up/ok", messages=MESSAGES)
    assert info.value.code == "model_not_priced"
    assert upstream[0].requests == [], "an unpriced call must never reach the upstream"


async def test_no_credits_is_402_then_a_grant_admits(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await billed_hub(hub_factory, upstream[1], [{**RATE, "model": "up/ok"}])
    client = hub.openai()
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="up/ok", messages=MESSAGES, max_tokens=10)
    err = info.value
    assert err.status_code == 402 and err.code == "insufficient_credits"
    assert err.type == "insufficient_quota"
    assert "0 available" in err.message and "needs up to 0.000018" in err.message
    await hub.settle()
    assert hub.calls() == [] and upstream[0].requests == []

    grant(hub, "alice", "0.001")  # 1000 micro-credits, from another process
    for _ in range(100):  # bounded: the server follows the ledger within its poll interval
        try:
            await client.chat.completions.create(model="up/ok", messages=MESSAGES, max_tokens=10)
            break
        except openai.APIStatusError:
            await asyncio.sleep(0.05)
    await hub.settle()  # PostgreSQL's writer commits on its own task
    [call] = hub.calls()
    assert call["status"] == "success"
    assert call["credits"] == USAGE["prompt_tokens"] + USAGE["completion_tokens"]  # 15
    assert hub.app[CREDITS].balances[1] == 1000 - 15
    ledger_agrees(hub)
    [event] = await ledger.meter_pending(hub.app[READER], 10)  # the usage event to export
    assert event["idempotency_key"] == call["id"] and event["credits"] == 15
    assert event["model"] == "up/ok" and event["prompt_tokens"] == USAGE["prompt_tokens"]


async def test_concurrent_calls_never_overdraw(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await billed_hub(hub_factory, base_url)
    # Each call holds 8 (prompt estimate) + 10 (max_tokens) = 18 and costs 11 + 4 = 15.
    grant(hub, "alice", "0.00018")  # covers exactly 10 holds
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 180)
    body = {"model": "up/gated", "messages": MESSAGES, "stream": True, "max_tokens": 10}

    async def one(session: aiohttp.ClientSession) -> int:
        async with session.post(
            hub.url + "/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r:  # fmt: skip
            await r.read()
            return r.status

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(100)]
        await hub.eventually(lambda: sum(t.done() for t in tasks) == 90, seconds=10)
        assert hub.app[CREDITS].available(1) >= 0
        fake.release.set()
        statuses = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    assert statuses.count(200) == 10 and statuses.count(402) == 90
    assert len(fake.requests) == 10
    assert hub.app[CREDITS].balances[1] == 180 - 10 * 15
    await hub.settle()  # PostgreSQL's writer commits on its own task
    ledger_agrees(hub)


async def test_disconnects_settle_every_call_once(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await billed_hub(hub_factory, base_url)
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    body = {"model": "up/gated", "messages": MESSAGES, "stream": True, "max_tokens": 10}
    rng = random.Random(7)
    leave = [rng.random() < 0.5 for _ in range(30)]

    async def one(session: aiohttp.ClientSession, quit_early: bool) -> None:
        async with session.post(
            hub.url + "/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r:  # fmt: skip
            await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
            if quit_early:
                r.close()
                return
            await asyncio.wait_for(r.read(), 10)

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(one(session, q)) for q in leave]
        await asyncio.wait_for(fake.first_sent.wait(), 5)
        await hub.eventually(lambda: sum(t.done() for t in tasks) == sum(leave), seconds=10)
        fake.release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
    await hub.settle()  # PostgreSQL's writer commits on its own task
    await hub.eventually(
        lambda: [r["status"] for r in hub.calls()].count("processing") == 0, seconds=5
    )
    rows = hub.calls()
    assert len(rows) == 30
    assert sorted(r["status"] for r in rows) == ["failed"] * sum(leave) + ["success"] * (
        30 - sum(leave)
    )
    for row in rows:
        assert row["credits"] > 0, "a call that reached the upstream is billed"
        if row["status"] == "failed":
            assert row["usage_estimated"] == 1 and row["error"] == "client disconnected"
        else:
            assert row["credits"] == 15 and row["usage_estimated"] == 0
    ledger_agrees(hub)
    debits = hub.rows("SELECT count(*) AS n FROM credit_ledger WHERE kind = 'debit'")
    assert debits[0]["n"] == 30


async def test_failure_before_upstream_costs_nothing(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await billed_hub(hub_factory, upstream[1], [{**RATE, "model": "up/e500"}])
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    with pytest.raises(openai.APIStatusError):
        await hub.openai().chat.completions.create(model="up/e500", messages=MESSAGES)
    await hub.settle()  # PostgreSQL's writer commits on its own task
    [row] = hub.calls()
    assert row["status"] == "failed" and row["credits"] == 0
    assert hub.app[CREDITS].balances[1] == 1_000_000
    ledger_agrees(hub)


def test_the_ledger_is_append_only(hub: Hub) -> None:
    conn = hub.db()
    conn.execute(
        "INSERT INTO credit_ledger (user_id, kind, amount, created_at) VALUES (1, 'grant', 5, 0)"
    )
    with pytest.raises(Exception, match="append-only"):
        conn.execute("UPDATE credit_ledger SET amount = 500")
    with pytest.raises(Exception, match="append-only"):
        conn.execute("DELETE FROM credit_ledger")
    with pytest.raises(Exception, match=r"(?i)unique"):  # either dialect's wording
        for _ in range(2):
            conn.execute(
                "INSERT INTO credit_ledger (user_id, kind, amount, call_id, created_at) "
                "VALUES (1, 'debit', -1, 'call-x', 0)"
            )


async def test_images_are_priced_per_image_and_recorded(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    rate = {"model": "demo/echo", "input": "1", "output": "1", "per_image": "0.001"}
    hub = await billed_hub(hub_factory, upstream[1], [rate])
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    content = [{"type": "text", "text": "two pictures"}, picture, picture]
    await hub.openai().chat.completions.create(
        model="demo/echo", messages=[{"role": "user", "content": content}]
    )
    await hub.settle()  # PostgreSQL's writer commits on its own task
    [row] = hub.calls()
    tokens = row["prompt_tokens"] + row["completion_tokens"]  # at one micro-credit each
    assert row["credits"] == tokens + 2 * 1000
    assert row["params"] == '{"images":2}'
    ledger_agrees(hub)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unexpected_error_still_settles_the_call(
    hub_factory: HubFactory,
    upstream: tuple[FakeOpenAI, str],
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    from hubproxy.providers.openai.provider import OpenAIProvider, OpenAIStream

    def broken(*_: Any) -> Any:
        raise KeyError("a bug in a translator")

    monkeypatch.setattr(OpenAIStream if stream else OpenAIProvider,
                        "feed" if stream else "chat_reply", broken)  # fmt: skip
    hub = await billed_hub(hub_factory, upstream[1], [{**RATE, "model": "up/ok"}])
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    body = {"model": "up/ok", "messages": MESSAGES, "stream": stream, "max_tokens": 10}
    async with aiohttp.ClientSession() as s, s.post(
        hub.url + "/v1/chat/completions", json=body,
        headers={"Authorization": f"Bearer {hub.key}"},
    ) as r:  # fmt: skip
        raw = await r.read()
    if stream:  # after the first byte: one well-formed error event ends the stream
        last = raw.rstrip().rsplit(b"\n\n", 1)[-1]
        assert r.status == 200 and last.startswith(b"data: ")
        assert orjson.loads(last[6:])["error"]["message"] == "Internal error; see the server log."
    else:
        assert r.status == 500
    await hub.eventually(lambda: [c["status"] for c in hub.calls()] == ["failed"])
    [row] = hub.calls()
    assert row["error"] == "internal error: KeyError"
    assert hub.app[CREDITS].held == {}, "the hold outlived its call"
    ledger_agrees(hub)


async def test_a_call_abandoned_before_its_first_byte_pays_its_prompt(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """#7.4: the upstream took the request (a reasoning model thinking, say) and the client
    left before any byte came back: the prompt estimate is billed, once, marked estimated."""
    fake, base_url = upstream
    hub = await billed_hub(hub_factory, base_url, [{**RATE, "model": "up/hang"}])
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    body = {"model": "up/hang", "messages": MESSAGES, "max_tokens": 10}
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(
            session.post(
                hub.url + "/v1/chat/completions", json=body,
                headers={"Authorization": f"Bearer {hub.key}"},
            )
        )  # fmt: skip
        await hub.eventually(lambda: len(fake.requests) == 1)
        request.cancel()  # the client gives up while the upstream works
        with contextlib.suppress(asyncio.CancelledError):
            await request
    await hub.eventually(lambda: [r["status"] for r in hub.calls()] == ["failed"])
    [row] = hub.calls()
    assert row["error"] == "client disconnected" and row["usage_estimated"] == 1
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] == 0
    assert row["credits"] == row["prompt_tokens"]  # one micro-credit per token
    ledger_agrees(hub)
