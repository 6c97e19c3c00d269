"""What a stream that did not finish is billed: the provider's final usage, or an estimate.

Every format's stream carries usage before it is final: Anthropic's `message_start` says
`output_tokens: 1`, Gemini repeats running totals on every event, some OpenAI-compatible
servers (vLLM's continuous_usage_stats) put the running usage on every chunk. A stream cut
before its final usage must not be billed at those provisional figures and marked as the
provider's: it is billed at an estimate from the text the client was given, marked
`usage_estimated`. A stream that carried its final usage and was cut after it is billed at
that usage. Each case runs through the hub, to the fake upstreams of tests/fakes, from both
faces (OpenAI's chat completions and Anthropic's messages).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from hubproxy.api.state import CREDITS
from tests.conftest import Hub, HubFactory
from tests.e2e import SDK_TIMEOUT, provider, settled
from tests.fakes import anthropic_upstream, gemini_upstream
from tests.fakes.anthropic_upstream import CUT_TEXT, FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import USAGE, FakeOpenAI
from tests.test_billing import grant, ledger_agrees

MODELS = [
    "claude/claude-cut",
    "claude/claude-nostop",
    "gem/gemini-cut",
    "up/runningcut",
]
# Tokens of the text relayed before each cut, by the estimate's rule: an ASCII character is a
# quarter token, any other character a whole one; rounded up.
#   claude-cut: 50 x ("Hello there " 12 + "and more " 9 ASCII, "世界" + "日本語" 5 CJK)
CUT_TOKENS = -(-(50 * (12 + 9) + 50 * 5 * 4) // 4)  # 513
GEMINI_CUT_TOKENS = len("今日の東京の天気")  # 8 CJK characters; the event said 4 (so far)
RUNNING_CUT_TOKENS = -(-len("Hello from") // 4)  # 3; the chunk said 2 (so far)


@pytest.fixture
async def hub(
    hub_factory: HubFactory,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
) -> Hub:
    hub = await hub_factory(
        [
            provider("up", "openai", upstream[1], "sk-upstream-SECRET-key-000000001"),
            provider("claude", "anthropic", claude.url + "/v1", anthropic_upstream.KEY),
            provider("gem", "gemini", gemini.url + "/v1beta", gemini_upstream.KEY),
        ],
        billing={
            "mode": "credits",
            "rates": [{"model": m, "input": "1", "output": "1"} for m in MODELS],
        },
    )
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    return hub


async def stream(hub: Hub, face: str, model: str) -> bytes:
    """A streamed call through one face, read to its end; the raw bytes the client got."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 2000,
        "messages": [{"role": "user", "content": "Say a lot."}],
        "stream": True,
    }
    if face == "openai":
        url, headers = "/v1/chat/completions", {"Authorization": f"Bearer {hub.key}"}
    else:
        url, headers = "/v1/messages", {"x-api-key": hub.key, "anthropic-version": "2023-06-01"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SDK_TIMEOUT)) as s,
        s.post(hub.url + url, data=orjson.dumps(body), headers=headers) as r,
    ):
        assert r.status == 200
        return await r.read()


def billed(hub: Hub, row: Any) -> None:
    """At one micro-credit a token, the call cost its recorded tokens, and the ledger says so."""
    assert row["credits"] == row["prompt_tokens"] + row["completion_tokens"]
    ledger_agrees(hub)


FACES = pytest.mark.parametrize("face", ["openai", "anthropic"])


@FACES
async def test_cut_anthropic_stream_is_billed_for_what_was_relayed(hub: Hub, face: str) -> None:
    raw = await stream(hub, face, "claude/claude-cut")
    # The client was given the whole text before the stream broke off.
    deltas = b'"text_delta"' if face == "anthropic" else b'"content":"'
    assert raw.count(deltas) >= len(anthropic_upstream.CUT_DELTAS)
    assert "日本語".encode() in raw and len(CUT_TEXT) > 500
    [row] = await settled(hub)
    assert row["status"] == "failed"
    assert row["usage_estimated"] == 1, "a provisional count was taken as the provider's"
    assert row["completion_tokens"] == CUT_TOKENS
    billed(hub, row)


@FACES
async def test_anthropic_stream_cut_after_its_final_usage_is_billed_at_it(
    hub: Hub, face: str
) -> None:
    await stream(hub, face, "claude/claude-nostop")
    [row] = await settled(hub)
    assert row["status"] == "failed"  # message_stop never came
    # message_delta's cumulative usage is final: 25 in, 15 out (stream_text.sse).
    assert (row["prompt_tokens"], row["completion_tokens"]) == (25, 15)
    assert row["usage_estimated"] == 0
    billed(hub, row)


@FACES
async def test_cut_gemini_stream_is_not_billed_at_a_running_total(hub: Hub, face: str) -> None:
    await stream(hub, face, "gem/gemini-cut")
    [row] = await settled(hub)
    assert row["status"] == "failed"
    assert row["usage_estimated"] == 1
    assert row["completion_tokens"] == GEMINI_CUT_TOKENS
    billed(hub, row)


@FACES
async def test_cut_openai_stream_with_running_usage_is_estimated(hub: Hub, face: str) -> None:
    await stream(hub, face, "up/runningcut")
    [row] = await settled(hub)
    assert row["status"] == "failed"
    assert row["usage_estimated"] == 1
    assert row["completion_tokens"] == RUNNING_CUT_TOKENS
    billed(hub, row)


@pytest.mark.parametrize(
    ("model", "prompt_tokens"),
    [
        ("claude/claude-cut", 25),  # message_start's input_tokens (stream_text.sse)
        ("gem/gemini-cut", 138),  # the event's promptTokenCount (stream_text_ja.sse)
        ("up/runningcut", USAGE["prompt_tokens"]),
    ],
)
@FACES
async def test_cut_stream_bills_the_providers_input_count(
    hub: Hub, face: str, model: str, prompt_tokens: int
) -> None:
    """The input count a stream gives before it ends is final for the input: an estimate is
    needed for the output only."""
    await stream(hub, face, model)
    [row] = await settled(hub)
    assert row["usage_estimated"] == 1
    assert row["prompt_tokens"] == prompt_tokens
    billed(hub, row)
