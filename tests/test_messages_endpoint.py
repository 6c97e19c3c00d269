"""The anthropic SDK against hubproxy's POST /v1/messages, end to end, to every kind of upstream.

To an Anthropic upstream (tests/fakes/anthropic_upstream.py) the client's bytes pass through
both ways, and the usage is tapped on the way. To an OpenAI-compatible upstream (the OpenAI
fake of conftest, or tests/fakes/openai_tools_upstream.py for tool calls), to Gemini
(tests/fakes/gemini_upstream.py) and to the demo provider, the request is translated and the
answer comes back in Anthropic's shapes, whole or as the events the SDK's stream helpers read.
Errors leave in Anthropic's shape, {"type": "error", "error": {"type", "message"}}, so the
SDK raises its own exception classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from multidict import CIMultiDict

from tests.conftest import Hub, HubFactory
from tests.e2e import JA_REPLY, JA_STREAM, PNG, SDK_TIMEOUT, provider, settled
from tests.fakes import anthropic_upstream, gemini_upstream, openai_tools_upstream
from tests.fakes.anthropic_upstream import TEXT, FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_tools_upstream import STREAM_CALLS, FakeOpenAITools
from tests.fakes.openai_upstream import USAGE, WORDS, FakeOpenAI
from tests.fakes.wire import BYTE_BY_BYTE, serve

MESSAGES: list[Any] = [{"role": "user", "content": "hi there"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather now at a place",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
TIME_TOOL = {
    "name": "get_time",
    "description": "The time now in a time zone",
    "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}},
}


@pytest.fixture
async def tools() -> AsyncIterator[FakeOpenAITools]:
    fake = FakeOpenAITools()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
async def hub(
    hub_factory: HubFactory,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
    tools: FakeOpenAITools,
) -> Hub:
    return await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            provider("up", "openai", upstream[1], "sk-upstream-SECRET-key-000000001"),
            provider("tools", "openai", tools.url + "/v1", openai_tools_upstream.KEY),
            provider("claude", "anthropic", claude.url + "/v1", anthropic_upstream.KEY),
            provider("gemini", "gemini", gemini.url + "/v1beta", gemini_upstream.KEY),
        ]
    )


def client(hub: Hub, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=hub.url,
        api_key=kw.pop("api_key", hub.key),
        max_retries=0,
        timeout=SDK_TIMEOUT,
        **kw,
    )


async def post(
    hub: Hub, body: bytes | dict[str, Any], key: str | None = None
) -> tuple[int, bytes, CIMultiDict[str]]:
    """POST /v1/messages as raw bytes, the way the Anthropic SDK sends it."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {
        "x-api-key": key or hub.key,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SDK_TIMEOUT)) as s,
        s.post(hub.url + "/v1/messages", data=raw, headers=headers) as r,
    ):
        return r.status, await r.read(), r.headers.copy()


# --- to an Anthropic upstream: the bytes pass through ---------------------------------------


async def test_passthrough_whole_answer(hub: Hub, claude: FakeAnthropic) -> None:
    message = await client(hub).messages.create(
        model="claude/claude-text",
        max_tokens=100,
        messages=MESSAGES,
        extra_body={"temperature": 0.5},
    )
    assert message.id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert message.content[0].type == "text"
    assert message.content[0].text == TEXT["message_text.json"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2095, 503)
    seen = claude.requests[-1]
    assert seen.body == {
        "model": "claude-text", "max_tokens": 100, "messages": MESSAGES, "temperature": 0.5,
    }  # fmt: skip
    assert seen.header("x-api-key") == anthropic_upstream.KEY
    assert hub.key not in str(seen.headers)

    body = {"model": "claude/claude-text", "max_tokens": 100, "messages": MESSAGES}
    status, raw, _ = await post(hub, body)
    assert status == 200 and raw == claude.sent[-1], "the upstream's bytes were changed"
    rows = hub.calls()
    assert [(r["status"], r["prompt_tokens"], r["completion_tokens"]) for r in rows] == [
        ("success", 2095, 503)
    ] * 2
    assert all(r["usage_estimated"] == 0 for r in rows)


@pytest.mark.parametrize(
    ("model", "text", "usage"),
    [
        ("claude-text", TEXT["stream_text.sse"], (25, 15)),
        ("claude-unicode", TEXT["stream_unicode_cache.sse"], (7979, 9)),
    ],
    ids=["text", "unicode-cache"],
)
async def test_passthrough_stream(
    hub: Hub, claude: FakeAnthropic, model: str, text: str, usage: tuple[int, int]
) -> None:
    claude.sizes = BYTE_BY_BYTE
    body = {"model": f"claude/{model}", "max_tokens": 100, "messages": MESSAGES, "stream": True}
    status, raw, headers = await post(hub, body)
    assert status == 200
    assert raw == claude.sent[-1], "the upstream's stream was changed on its way through"
    assert headers["Content-Type"].startswith("text/event-stream")
    assert "anthropic-organization-id" not in headers, "the provider's account details leaked"
    assert claude.requests[-1].body == {**body, "model": model}

    async with client(hub).messages.stream(
        model=f"claude/{model}", max_tokens=100, messages=MESSAGES
    ) as stream:
        said = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert said == text
    assert final.content[-1].type == "text" and final.content[-1].text == text
    assert final.usage.output_tokens == usage[1]
    rows = hub.calls()
    assert [(r["status"], r["usage_estimated"]) for r in rows] == [("success", 0)] * 2
    assert all((r["prompt_tokens"], r["completion_tokens"]) == usage for r in rows)


async def test_passthrough_stream_without_usage_is_estimated(
    hub: Hub, claude: FakeAnthropic
) -> None:
    """The captured thinking stream carries no usage at all (the SDK itself cannot accumulate
    it): the bytes still pass through untouched, and the call is recorded with an estimate."""
    body = {"model": "claude/claude-thinking", "max_tokens": 100, "messages": MESSAGES}
    status, raw, _ = await post(hub, {**body, "stream": True})
    assert status == 200 and raw == claude.sent[-1]
    assert "2 × 462".encode() in raw
    [row] = hub.calls()
    assert row["status"] == "success" and row["usage_estimated"] == 1
    assert row["completion_tokens"] > 0


async def test_passthrough_tool_use_stream(hub: Hub, claude: FakeAnthropic) -> None:
    async with client(hub).messages.stream(
        model="claude/claude-text", max_tokens=100, messages=MESSAGES, tools=[WEATHER_TOOL]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool_use = final.content[-1]
    assert tool_use.type == "tool_use"
    tool_id, name, arguments = anthropic_upstream.STREAM_TOOL
    assert (tool_use.id, tool_use.name, tool_use.input) == (tool_id, name, arguments)
    assert claude.requests[-1].body["tools"] == [WEATHER_TOOL]
    [row] = hub.calls()
    assert (row["prompt_tokens"], row["completion_tokens"]) == (472, 89)


async def test_passthrough_error_event_mid_stream(hub: Hub, claude: FakeAnthropic) -> None:
    body = {"model": "claude/claude-midstream", "max_tokens": 9, "messages": MESSAGES}
    status, raw, _ = await post(hub, {**body, "stream": True})
    assert status == 200
    before_error = claude.sent[-1].rsplit(b"event: error", 1)[0]
    assert raw.startswith(before_error), "what came before the error was not passed on"
    last = raw[len(before_error) :]
    assert last.startswith(b"event: error\ndata: ")
    err = orjson.loads(last.split(b"data: ", 1)[1])
    assert err["type"] == "error" and err["error"]["type"] == "overloaded_error"

    said = ""
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client(hub).messages.stream(**body) as stream:
            async for piece in stream.text_stream:
                said += piece
    assert said == "Hello"
    assert "overloaded" in str(info.value.body)
    assert [r["status"] for r in await settled(hub)] == ["failed", "failed"]


@pytest.mark.parametrize(
    ("model", "status", "kind", "error"),
    [
        ("claude/claude-overloaded", 503, "overloaded_error", anthropic.InternalServerError),
        ("claude/claude-ratelimited", 429, "rate_limit_error", anthropic.RateLimitError),
        ("claude/claude-unauthorized", 502, "api_error", anthropic.InternalServerError),
        ("gemini/gemini-e429", 429, "rate_limit_error", anthropic.RateLimitError),
        ("gemini/gemini-e400", 400, "invalid_request_error", anthropic.BadRequestError),
        ("up/e500", 502, "api_error", anthropic.InternalServerError),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_upstream_errors_in_anthropic_shape(
    hub: Hub, model: str, status: int, kind: str, error: type[Exception], stream: bool
) -> None:
    with pytest.raises(error) as info:
        await client(hub).messages.create(
            model=model, max_tokens=10, messages=MESSAGES, stream=stream
        )
    assert isinstance(info.value, anthropic.APIStatusError)
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"type", "error"} and body["type"] == "error"
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind
    assert body["error"]["message"]
    assert "x-api-key" not in str(body) and "SECRET" not in str(body)
    [row] = await settled(hub)
    assert row["status"] == "failed"


# --- to other upstreams: translated both ways -----------------------------------------------


@pytest.mark.parametrize(
    ("model", "whole", "streamed", "usage"),
    [
        ("demo/echo", "You said: hi there", "You said: hi there", None),
        ("up/ok", "".join(WORDS), "".join(WORDS), (11, 4)),
        ("gemini/gemini-ja", JA_REPLY, JA_STREAM, None),
    ],
    ids=["demo", "openai-compatible", "gemini"],
)
async def test_translated_answers_are_anthropic_shaped(
    hub: Hub, model: str, whole: str, streamed: str, usage: tuple[int, int] | None
) -> None:
    c = client(hub)
    message = await c.messages.create(model=model, max_tokens=100, messages=MESSAGES)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model and message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == whole  # type: ignore[union-attr]

    async with c.messages.stream(model=model, max_tokens=100, messages=MESSAGES) as stream:
        said = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert said == streamed
    assert final.stop_reason == "end_turn" and final.content[0].text == streamed  # type: ignore[union-attr]

    rows = hub.calls()
    assert [(r["status"], r["usage_estimated"]) for r in rows] == [("success", 0)] * 2
    # Anthropic's usage says what the provider counted, whole and streamed.
    for row, got in zip(rows, (message.usage, final.usage), strict=True):
        assert got.output_tokens == row["completion_tokens"] > 0
        assert got.input_tokens == row["prompt_tokens"] > 0
    if usage is not None:
        assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == usage


@pytest.mark.parametrize(
    ("model", "kind", "said"),
    [
        ("gemini/gemini-midstream", "overloaded_error", "今日の東京の天気"),
        ("up/cut", "api_error", "Hello"),
    ],
    ids=["gemini-error-event", "openai-connection-cut"],
)
async def test_translated_stream_fault_is_an_anthropic_error_event(
    hub: Hub, model: str, kind: str, said: str
) -> None:
    ask: dict[str, Any] = {"model": model, "max_tokens": 100, "messages": MESSAGES}
    status, raw, _ = await post(hub, {**ask, "stream": True})
    assert status == 200
    assert b"event: message_stop" not in raw
    last = raw.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert last.startswith(b"event: error\ndata: ")
    assert orjson.loads(last.split(b"data: ", 1)[1])["error"]["type"] == kind

    got = ""
    with pytest.raises(anthropic.APIStatusError):
        async with client(hub).messages.stream(**ask) as stream:
            async for piece in stream.text_stream:
                got += piece
    assert got == said
    assert [r["status"] for r in await settled(hub)] == ["failed", "failed"]


async def test_openai_upstream_gets_an_openai_request(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    await client(hub).messages.create(
        model="up/ok",
        max_tokens=50,
        system="Be brief.",
        messages=MESSAGES,
        stop_sequences=["END"],
        metadata={"user_id": "u-42"},
    )
    assert fake.requests[-1].body == {
        "model": "ok",
        "max_tokens": 50,
        "messages": [{"role": "system", "content": "Be brief."}, *MESSAGES],
        "stop": ["END"],
        "user": "u-42",
    }
    assert fake.requests[-1].headers["Authorization"] == "Bearer sk-upstream-SECRET-key-000000001"
    assert USAGE["prompt_tokens"] == hub.calls()[-1]["prompt_tokens"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_tool_use_round_trip_through_an_openai_upstream(
    hub: Hub, tools: FakeOpenAITools, stream: bool
) -> None:
    c = client(hub)
    question = [{"role": "user", "content": "Weather and time in 東京?"}]
    ask: dict[str, Any] = {
        "model": "tools/gpt", "max_tokens": 200, "tools": [WEATHER_TOOL, TIME_TOOL],
    }  # fmt: skip
    if stream:
        async with c.messages.stream(messages=question, **ask) as events:
            first = await events.get_final_message()
        expected = STREAM_CALLS
    else:
        first = await c.messages.create(messages=question, **ask)
        expected = openai_tools_upstream.REPLY_CALLS
    assert first.stop_reason == "tool_use"
    assert first.content[0].type == "text"
    assert first.content[0].text == "héllo ✓ 日本, checking"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == expected
    sent = tools.requests[0].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "get_time"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]

    results = [
        {"type": "tool_result", "tool_use_id": u.id, "content": f"result of {u.name}"} for u in uses
    ]
    followup = [
        *question,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": results},
    ]
    second = await c.messages.create(messages=followup, **ask)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "".join(WORDS)  # type: ignore[union-attr]
    assert tools.tool_messages == [
        {"role": "tool", "tool_call_id": u.id, "content": f"result of {u.name}"} for u in uses
    ]
    assert [r["status"] for r in hub.calls()] == ["success", "success"]


async def test_images_reach_gemini_as_inline_and_file_data(hub: Hub, gemini: FakeGemini) -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a/cat.png"}},
    ]
    message = await client(hub).messages.create(
        model="gemini/gemini-ja", max_tokens=100, messages=[{"role": "user", "content": content}]
    )
    assert message.content[0].text == JA_REPLY  # type: ignore[union-attr]
    assert gemini.requests[-1].body["contents"][0]["parts"] == [
        {"text": "What is in these?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/cat.png"}},
    ]


# --- the client's mistakes ------------------------------------------------------------------


async def test_bad_key_is_401_authentication_error(hub: Hub) -> None:
    with pytest.raises(anthropic.AuthenticationError) as info:
        await client(hub, api_key="hp-not-a-real-key").messages.create(
            model="claude/claude-text", max_tokens=10, messages=MESSAGES
        )
    assert info.value.status_code == 401
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    status, raw, _ = await post(hub, {"model": "demo/echo", "max_tokens": 5}, key="hp-nope")
    assert status == 401
    assert orjson.loads(raw)["error"]["type"] == "authentication_error"
    assert hub.calls() == []


@pytest.mark.parametrize("model", ["nope/claude-x", "demo/not-offered", "no-slash"])
async def test_unknown_model_is_404_not_found_error(hub: Hub, model: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        await client(hub).messages.create(model=model, max_tokens=10, messages=MESSAGES)
    assert info.value.status_code == 404
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error" and model in body["error"]["message"]
    assert hub.calls() == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"",
        orjson.dumps({"model": "claude/claude-text", "messages": MESSAGES}),  # no max_tokens
        orjson.dumps({"model": "claude/claude-text", "max_tokens": 5, "messages": []}),
        orjson.dumps({"model": 7, "max_tokens": 5, "messages": MESSAGES}),
        orjson.dumps(
            {"model": "up/ok", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}
        ),
        orjson.dumps(
            {"model": "up/ok", "max_tokens": 5, "messages": MESSAGES,
             "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
        ),
    ],
    ids=["not-json", "not-object", "empty", "no-max-tokens", "no-messages", "model-not-string",
         "system-role", "server-tool-to-openai"],
)  # fmt: skip
async def test_malformed_body_is_400_invalid_request_error(
    hub: Hub, claude: FakeAnthropic, body: bytes
) -> None:
    status, raw, _ = await post(hub, body)
    assert status == 400
    answer = orjson.loads(raw)
    assert set(answer) == {"type", "error"} and answer["type"] == "error"
    assert set(answer["error"]) == {"type", "message"}
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"]
    assert claude.requests == []
    assert all(r["status"] == "failed" for r in await settled(hub))


async def test_sdk_raises_bad_request_for_an_invalid_request(hub: Hub) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await client(hub).messages.create(
            model="gemini/gemini-ja",
            max_tokens=10,
            messages=[{"role": "user", "content": [{"type": "video", "source": {}}]}],  # type: ignore[list-item]
        )
    assert info.value.status_code == 400
    assert "video" in info.value.body["error"]["message"]  # type: ignore[index]
    assert hub.calls() == []


# --- the pass-through carries what only Anthropic understands --------------------------------

ANTHROPIC_ONLY: dict[str, dict[str, Any]] = {
    "server-tool": {
        "messages": MESSAGES,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
    },
    "url-document": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document",
                     "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
                    {"type": "text", "text": "Summarise this."},
                ],
            }
        ],
    },
    "image-tool-result": {
        "messages": [
            MESSAGES[0],
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": anthropic_upstream.REPLY_TOOL[0],
                 "name": "get_weather", "input": anthropic_upstream.REPLY_TOOL[2]}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": anthropic_upstream.REPLY_TOOL[0],
                 "content": [{"type": "image", "source": {
                     "type": "base64", "media_type": "image/png", "data": PNG}}]}]},
        ],
        "tools": [WEATHER_TOOL],
    },
}  # fmt: skip


@pytest.mark.parametrize("extra", list(ANTHROPIC_ONLY.values()), ids=list(ANTHROPIC_ONLY))
async def test_passthrough_accepts_what_only_anthropic_understands(
    hub: Hub, claude: FakeAnthropic, extra: dict[str, Any]
) -> None:
    body = {"model": "claude/claude-text", "max_tokens": 100, **extra}
    status, raw, _ = await post(hub, body)
    assert status == 200, raw.decode()
    assert raw == claude.sent[-1]
    assert claude.requests[-1].body == {**body, "model": "claude-text"}


async def test_passthrough_forwards_the_clients_anthropic_beta_header(
    hub: Hub, claude: FakeAnthropic
) -> None:
    await client(hub).messages.create(
        model="claude/claude-text",
        max_tokens=10,
        messages=MESSAGES,
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert claude.requests[-1].header("anthropic-beta") == "context-1m-2025-08-07"


async def test_router_errors_on_the_messages_path_speak_anthropic(hub: Hub) -> None:
    async with aiohttp.ClientSession() as s, s.get(hub.url + "/v1/messages") as r:
        assert r.status == 405
        body = await r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "POST" in body["error"]["message"]
