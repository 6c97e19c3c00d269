"""The rest of the OpenAI and Anthropic surface through hubproxy, with their real SDKs:
models.retrieve (GET /v1/models/{provider/model}), legacy completions (POST /v1/completions)
and the Anthropic SDK's messages.count_tokens (POST /v1/messages/count_tokens)."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from hubproxy.api.state import CREDITS
from tests.conftest import Hub, HubFactory
from tests.e2e import provider, sdk, settled
from tests.fakes import anthropic_upstream as claude_fake
from tests.fakes import openai_responses as openai_fake
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import KEY as GEMINI_KEY
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_billing import grant, ledger_agrees

WORDS = "".join(openai_fake.COMPLETION_WORDS)
USAGE = openai_fake.COMPLETION_USAGE


@pytest.fixture
async def hub(
    hub_factory: HubFactory,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
) -> Hub:
    return await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo", "big/one"]},
            provider(
                "up",
                "openai",
                upstream[1],
                "sk-upstream-key-000000000001",
                models=["gpt-3.5-turbo-instruct"],
            ),
            provider("claude", "anthropic", claude.url + "/v1", claude_fake.KEY),
            provider("gemini", "gemini", gemini.url + "/v1beta", GEMINI_KEY),
        ],
        billing={
            "mode": "credits",
            "rates": [
                {"model": "up/gpt-3.5-turbo-instruct", "input": "1", "output": "1"},
                {"model": "claude/claude-text", "input": "1", "output": "1"},
            ],
        },
    )


def anthropic_sdk(hub: Hub) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=hub.url, api_key=hub.key, max_retries=0, timeout=10.0)


# --- GET /v1/models/{id} ---------------------------------------------------------------------


async def test_models_retrieve_finds_each_listed_model_slashes_and_all(hub: Hub) -> None:
    client = sdk(hub)
    listed = [m.id async for m in client.models.list()]
    assert "demo/big/one" in listed
    for model_id in listed:
        got = await client.models.retrieve(model_id)  # the SDK sends the id percent-encoded
        assert (got.id, got.object, got.owned_by) == (model_id, "model", model_id.split("/")[0])
    async with aiohttp.ClientSession() as session, session.get(
        hub.url + "/v1/models/demo/big/one", headers={"Authorization": f"Bearer {hub.key}"}
    ) as r:  # fmt: skip
        assert r.status == 200 and (await r.json())["id"] == "demo/big/one"


@pytest.mark.parametrize("model_id", ["demo/nope", "nope", "claude/claude-text", "demo/echo/"])
async def test_models_retrieve_of_an_unlisted_model_is_a_404(hub: Hub, model_id: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await sdk(hub).models.retrieve(model_id)
    assert info.value.code == "model_not_found"


async def test_models_retrieve_needs_a_key(hub: Hub) -> None:
    with pytest.raises(openai.AuthenticationError):
        await hub.openai(api_key="hp-wrong").models.retrieve("demo/echo")


# --- POST /v1/completions --------------------------------------------------------------------


async def test_completions_pass_through_with_the_usage(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    got = await sdk(hub).completions.create(
        model="up/gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=7
    )
    assert got.object == "text_completion" and got.choices[0].text == WORDS
    assert got.usage is not None
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (5, 7)
    seen = upstream[0].requests[-1]
    assert seen.path == "/v1/completions"
    assert seen.body == {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test",
                         "max_tokens": 7}  # fmt: skip
    [row] = await settled(hub)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("success", 5, 7)
    assert row["credits"] == 12
    ledger_agrees(hub)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_streamed_completions_pass_through_with_the_usage_tap(
    hub: Hub, upstream: tuple[FakeOpenAI, str], include_usage: bool
) -> None:
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = await sdk(hub).completions.create(
        model="up/gpt-3.5-turbo-instruct", prompt="Say this is a test", stream=True, **extra
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == WORDS
    usages = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert [(u.prompt_tokens, u.completion_tokens) for u in usages] == [(5, 7)]
    else:  # the gateway asked for the usage itself, and keeps it from the client
        assert usages == [] and all(c.choices for c in chunks)
    assert upstream[0].requests[-1].body["stream_options"] == {"include_usage": True}
    [row] = await settled(hub)
    assert (row["status"], row["stream"], row["usage_estimated"]) == ("success", 1, 0)
    assert (row["prompt_tokens"], row["completion_tokens"], row["credits"]) == (5, 7, 12)
    ledger_agrees(hub)


@pytest.mark.parametrize("model", ["claude/claude-text", "gemini/gemini-ja", "demo/echo"])
async def test_completions_to_other_formats_are_a_400_naming_chat(hub: Hub, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk(hub).completions.create(model=model, prompt="hi")
    assert "/v1/chat/completions" in info.value.message
    assert hub.calls() == [], "a refused call costs and records nothing"


@pytest.mark.parametrize(
    ("body", "param"),
    [({"model": "up/gpt-3.5-turbo-instruct"}, "prompt"),
     ({"model": "up/gpt-3.5-turbo-instruct", "prompt": 7}, "prompt"),
     ({"prompt": "hi"}, "model"),
     ({"model": "up/gpt-3.5-turbo-instruct", "prompt": "hi", "stream": "yes"}, "stream")],
)  # fmt: skip
async def test_bad_completions_input_is_a_400(hub: Hub, body: Any, param: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        hub.url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {hub.key}"}
    ) as r:  # fmt: skip
        assert r.status == 400
        assert orjson.loads(await r.read())["error"]["param"] == param


# --- POST /v1/messages/count_tokens ----------------------------------------------------------

MESSAGES: list[Any] = [{"role": "user", "content": "Hello, Claude"}]


async def test_count_tokens_passes_through_to_anthropic_and_is_free(
    hub: Hub, claude: FakeAnthropic
) -> None:
    client = anthropic_sdk(hub)
    raw = await client.messages.with_raw_response.count_tokens(
        model="claude/claude-text", messages=MESSAGES, system="Be brief.",
        extra_headers={"anthropic-beta": "token-counting-2024-11-01"},
    )  # fmt: skip
    counted = await raw.parse()
    assert counted.input_tokens == claude_fake.COUNTED
    assert "x-hubproxy-token-count" not in raw.headers, "the provider's count, not an estimate"
    [seen] = claude.requests
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == {"model": "claude-text", "messages": MESSAGES, "system": "Be brief."}
    assert seen.header("x-api-key") == claude_fake.KEY
    assert seen.header("anthropic-beta") == "token-counting-2024-11-01"
    assert hub.calls() == [], "count_tokens is never a recorded call"
    assert hub.rows("SELECT count(*) AS n FROM credit_ledger")[0]["n"] == 0


@pytest.mark.parametrize("model", ["gemini/gemini-ja", "up/gpt-3.5-turbo-instruct", "demo/echo"])
async def test_count_tokens_elsewhere_is_the_gateways_marked_estimate(
    hub: Hub, gemini: FakeGemini, model: str
) -> None:
    client = anthropic_sdk(hub)
    short = await client.messages.with_raw_response.count_tokens(model=model, messages=MESSAGES)
    longer = await client.messages.count_tokens(
        model=model, messages=[{"role": "user", "content": "Hello, Claude " * 100}]
    )
    assert short.headers["x-hubproxy-token-count"] == "estimate"
    assert 0 < (await short.parse()).input_tokens < longer.input_tokens
    assert gemini.requests == [] and hub.calls() == []


async def test_count_tokens_errors_are_anthropic_shaped(hub: Hub) -> None:
    client = anthropic_sdk(hub)
    with pytest.raises(anthropic.NotFoundError) as info:
        await client.messages.count_tokens(model="nope/x", messages=MESSAGES)
    assert info.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.count_tokens(model="gemini/gemini-ja", messages=[])
    with pytest.raises(anthropic.BadRequestError):  # Anthropic's own 400 comes back as one
        await client.messages.count_tokens(
            model="claude/claude-text", messages=[{"role": "assistant", "content": "hi"}]
        )
    with pytest.raises(anthropic.AuthenticationError):
        await anthropic.AsyncAnthropic(
            base_url=hub.url, api_key="hp-wrong", max_retries=0
        ).messages.count_tokens(model="claude/claude-text", messages=MESSAGES)
