"""Token estimates of non-Latin text: about a token a character, not four characters a token.

The estimate sets a call's hold (its prompt) and, when a stream ends without the provider's
usage, what the call is billed (the text relayed). Chinese, Japanese or emoji text counted at
four characters a token would be held and billed at a quarter of its cost.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from hubproxy.api.state import CREDITS
from hubproxy.billing import tokens
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_billing import billed_hub, grant, ledger_agrees


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


CJK = "東京の天気は曇りで、気温は二十二度です。" * 50  # 1000 characters, about 1000 tokens


def test_estimates_count_a_non_ascii_character_as_a_token() -> None:
    assert tokens.units("abcd") == 4 and tokens.from_chars(tokens.units("abcd")) == 1
    assert tokens.from_chars(tokens.units("hello world!")) == 3  # ASCII: unchanged, 4 a token
    assert tokens.from_chars(tokens.units("日本語")) == 3
    assert tokens.from_chars(tokens.units("héllo ✓")) == 4  # 5 ASCII + 2 others: 3.25, up
    assert tokens.from_chars(tokens.units("😀")) == 1
    body = {"messages": [{"role": "user", "content": CJK}]}
    assert tokens.prompt(body) >= len(CJK)
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": CJK}]}]}
    assert tokens.prompt(parts) >= len(CJK)
    assert tokens.prompt({"input": [CJK, CJK]}) >= 2 * len(CJK)  # embeddings


async def test_a_cjk_prompt_is_held_at_a_token_a_character(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await billed_hub(hub_factory, base_url)  # up/gated at a micro-credit a token
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    body = {
        "model": "up/gated",
        "messages": [{"role": "user", "content": CJK}],
        "max_tokens": 10,
        "stream": True,
    }
    task = asyncio.create_task(post(hub, body))
    await asyncio.wait_for(fake.first_sent.wait(), 10)
    held = hub.app[CREDITS].held[1]
    assert held >= len(CJK) + 10, f"held {held} for a prompt of about {len(CJK)} tokens"
    fake.release.set()
    status, _ = await asyncio.wait_for(task, 10)
    assert status == 200
    ledger_agrees(hub)
