"""Holds: what a call sets aside before it goes upstream covers what it can cost.

A call asking for `n` choices can cost n times the output; a model priced at zero holds zero,
and many such holds at once must settle as cleanly as any other. Each runs through the hub
against the fake OpenAI upstream (tests/fakes/openai_upstream.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest

from hubproxy.api.state import CREDITS
from hubproxy.billing import prices, tokens
from hubproxy.billing.credits import Credits, RateBook
from hubproxy.errors import BadRequest
from hubproxy.providers.base import Usage
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import USAGE, WORDS, FakeOpenAI
from tests.test_billing import RATE, billed_hub, grant, ledger_agrees

MESSAGES = [{"role": "user", "content": "hi"}]
# "hi": 3 + 4 + 1 = 8 prompt tokens estimated; at one micro-credit a token, with max_tokens=10,
# one choice holds 8 + 10 = 18 and three hold 8 + 3 x 10 = 38.
ONE_CHOICE_HOLD = 18
THREE_CHOICE_HOLD = 38


async def post(hub: Hub, body: dict[str, Any]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s,
        s.post(
            hub.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r,
    ):
        return r.status, await r.read()


# --- n choices ------------------------------------------------------------------------------


async def test_n_choices_are_held_n_times(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await billed_hub(hub_factory, base_url, [{**RATE, "model": "up/ok"}])
    grant(hub, "alice", "0.00002")  # 20: one choice's hold (18), not three (38)
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 20)
    client = hub.openai()
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="up/ok", messages=MESSAGES, max_tokens=10, n=3)
    assert info.value.status_code == 402 and info.value.code == "insufficient_credits"
    assert "needs up to 0.000038" in info.value.message
    assert fake.requests == [], "a call its credits do not cover reached the upstream"

    grant(hub, "alice", "0.000018")  # 38: exactly three choices' hold
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 38)
    reply = await client.chat.completions.create(
        model="up/ok", messages=MESSAGES, max_tokens=10, n=3
    )
    assert [c.message.content for c in reply.choices] == ["".join(WORDS)] * 3
    [row] = hub.calls()
    # Billed for all three choices, and within the hold: the balance never went below zero.
    assert row["completion_tokens"] == 3 * USAGE["completion_tokens"]
    assert row["credits"] == USAGE["prompt_tokens"] + 3 * USAGE["completion_tokens"]
    assert row["credits"] <= THREE_CHOICE_HOLD
    assert hub.app[CREDITS].balances[1] == 38 - row["credits"] >= 0
    ledger_agrees(hub)


@pytest.mark.parametrize("n", ["3", 0, -2, True, 2.5, [3]])
async def test_a_malformed_n_is_refused_before_anything_is_held(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], n: Any
) -> None:
    fake, base_url = upstream
    hub = await billed_hub(hub_factory, base_url, [{**RATE, "model": "up/ok"}])
    status, raw = await post(hub, {"model": "up/ok", "messages": MESSAGES, "n": n})
    assert status == 400, raw
    assert b'"param":"n"' in raw and b"invalid_request_error" in raw
    assert fake.requests == [] and hub.calls() == []


def test_hold_covers_n_and_best_of() -> None:
    rates = RateBook()
    rates.replace([{"provider": "p", "model": "m", "type": "chat", "input": "1",
                    "output": "1", "cached_input": None, "per_image": "0"}])  # fmt: skip
    credits = Credits("credits", rates, default_max_tokens=100, source="test")
    credits.load({1: 10**9}, 0)
    prompt = tokens.prompt({"messages": MESSAGES})
    for body, choices in [
        ({}, 1),
        ({"n": 1}, 1),
        ({"n": 4}, 4),
        ({"best_of": 5}, 5),
        ({"n": 2, "best_of": 3}, 3),
    ]:
        hold = credits.admit(1, "p", "m", "chat", {"messages": MESSAGES, "max_tokens": 7, **body})
        assert hold is not None
        assert hold.amount == prompt + choices * 7, body
        credits.settle(hold, "c", None)
    with pytest.raises(BadRequest):
        credits.admit(1, "p", "m", "chat", {"messages": MESSAGES, "best_of": "x"})
    assert credits.held == {}


# --- a zero rate ----------------------------------------------------------------------------


async def test_concurrent_streams_to_a_zero_rated_model_all_settle(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """Free models (a local vLLM or Ollama) hold zero; twenty at once in flight must each be
    admitted, streamed to the end, recorded and settled once."""
    fake, base_url = upstream
    free = {"model": "up/gated", "input": "0", "output": "0"}
    hub = await billed_hub(hub_factory, base_url, [free])  # alice has no credits at all
    body = {"model": "up/gated", "messages": MESSAGES, "stream": True}
    tasks = [asyncio.create_task(post(hub, body)) for _ in range(20)]
    await hub.eventually(lambda: len(fake.requests) == 20, seconds=10)
    fake.release.set()
    done = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    for status, raw in done:
        assert status == 200
        assert raw.endswith(b"data: [DONE]\n\n"), raw[-300:]
        assert b'"error"' not in raw
    rows = hub.calls()
    assert len(rows) == 20
    assert {(r["status"], r["credits"], r["usage_estimated"]) for r in rows} == {("success", 0, 0)}
    assert hub.app[CREDITS].available(1) == 0
    ledger_agrees(hub)  # and no hold outlived its call


def test_zero_holds_interleave_with_priced_ones() -> None:
    rates = RateBook()
    rates.replace([
        {"provider": "p", "model": m, "type": "chat", "input": r, "output": r,
         "cached_input": None, "per_image": "0"}
        for m, r in (("free", "0"), ("paid", "1"))
    ])  # fmt: skip
    credits = Credits("credits", rates, default_max_tokens=10, source="test")
    credits.load({1: 1000}, 0)
    body = {"messages": MESSAGES, "max_tokens": 10}
    free = [credits.admit(1, "p", "free", "chat", body) for _ in range(3)]
    paid = credits.admit(1, "p", "paid", "chat", body)
    assert paid is not None and credits.available(1) == 1000 - paid.amount
    for hold in (free[0], paid, free[1], free[2]):
        assert hold is not None
        cost, _ = credits.settle(hold, "c", Usage(5, 5))
        assert cost == (10 if hold is paid else 0)
        with pytest.raises(RuntimeError, match="settled already"):
            credits.settle(hold, "c", Usage(5, 5))
    assert credits.held == {} and credits.available(1) == 990


def test_hold_math_is_exact_integers() -> None:
    rate = prices.Rate.parse("0.000001", "3.333333")
    amount = prices.hold(rate, prompt_tokens=7, max_output_tokens=3 * 10**6)
    assert isinstance(amount, int)
    # 7 x 0.000001 + 3e6 x 3.333333 = 9_999_999.000007 -> rounded up once: 10_000_000.
    assert amount == 10_000_000
