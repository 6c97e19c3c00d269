"""The openai SDK through hubproxy to an Anthropic upstream (type = "anthropic"), end to end.

The upstream is tests/fakes/anthropic_upstream.py on loopback: it replays the captured
Anthropic answers of tests/data cut into 1-7 byte writes (or byte by byte), checks each
request the way Anthropic does, and fails on request. The SDK must get OpenAI's shapes back,
the call log the provider's own token counts, and every fault a fitting status.
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import orjson
import pytest

from tests.conftest import Hub, HubFactory
from tests.e2e import PNG, provider, read_stream, sdk, settled
from tests.fakes.anthropic_upstream import KEY, REPLY_TOOL, STREAM_TOOL, TEXT, FakeAnthropic
from tests.fakes.wire import BYTE_BY_BYTE, SMALL_PIECES

MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hi there"},
]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["location"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather now at a place",
        "parameters": WEATHER_SCHEMA,
    },
}


@pytest.fixture
async def hub(hub_factory: HubFactory, claude: FakeAnthropic) -> Hub:
    base = claude.url + "/v1"
    return await hub_factory(
        [
            provider("claude", "anthropic", base, KEY),
            provider("wrongkey", "anthropic", base, "sk-ant-api03-WRONG-key-000000000000"),
        ]
    )


async def test_answer_is_openai_shaped_with_the_providers_usage(
    hub: Hub, claude: FakeAnthropic
) -> None:
    reply = await sdk(hub).chat.completions.create(
        model="claude/claude-text", messages=MESSAGES, max_tokens=100
    )
    assert reply.object == "chat.completion"
    assert reply.id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert reply.choices[0].message.content == TEXT["message_text.json"]
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2095, 503)

    [seen] = claude.requests
    assert seen.path == "/v1/messages"
    assert seen.header("x-api-key") == KEY and seen.header("anthropic-version") == "2023-06-01"
    assert hub.key not in orjson.dumps(seen.headers).decode(), "the client's key went upstream"
    assert seen.body == {
        "model": "claude-text",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
    }
    [row] = hub.calls()
    assert (row["status"], row["provider"], row["model"], row["stream"]) == (
        "success", "claude", "claude-text", 0,
    )  # fmt: skip
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2095, 503)
    assert row["usage_estimated"] == 0 and row["upstream_status"] == 200


@pytest.mark.parametrize(
    ("model", "sizes", "text", "usage"),
    [
        ("claude-text", SMALL_PIECES, TEXT["stream_text.sse"], (25, 15, 0)),
        # prompt = input + cache creation + cache read = 2679 + 1200 + 4100
        ("claude-unicode", SMALL_PIECES, TEXT["stream_unicode_cache.sse"], (7979, 9, 4100)),
        ("claude-unicode", BYTE_BY_BYTE, TEXT["stream_unicode_cache.sse"], (7979, 9, 4100)),
    ],
    ids=["text", "unicode-cache", "unicode-cache-byte-by-byte"],
)
async def test_streamed_text_equals_the_capture_and_usage_is_the_providers(
    hub: Hub,
    claude: FakeAnthropic,
    model: str,
    sizes: tuple[int, ...],
    text: str,
    usage: tuple[int, int, int],
) -> None:
    claude.sizes = sizes
    stream = await sdk(hub).chat.completions.create(
        model=f"claude/{model}",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    got = await read_stream(stream)
    assert got.text == text
    assert got.finish == "stop"
    assert all(c.object == "chat.completion.chunk" for c in got.chunks)
    assert got.usage is not None
    details = got.usage.prompt_tokens_details
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, details.cached_tokens) == usage
    assert claude.requests[-1].body["stream"] is True
    [row] = hub.calls()
    assert row["status"] == "success" and row["stream"] == 1
    assert (row["prompt_tokens"], row["completion_tokens"]) == usage[:2]
    assert row["usage_estimated"] == 0


async def test_stream_without_include_usage_has_no_usage_chunk(hub: Hub) -> None:
    stream = await sdk(hub).chat.completions.create(
        model="claude/claude-text", messages=MESSAGES, stream=True
    )
    got = await read_stream(stream)
    assert got.text == TEXT["stream_text.sse"] and got.usage is None
    [row] = hub.calls()
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (25, 15, 0)


async def test_thinking_stream_without_usage_is_recorded_as_an_estimate(hub: Hub) -> None:
    stream = await sdk(hub).chat.completions.create(
        model="claude/claude-thinking", messages=MESSAGES, stream=True
    )
    got = await read_stream(stream)
    assert got.text == TEXT["stream_thinking.sse"]
    assert got.reasoning.endswith("The remainder is 0, so GCD(1071, 462) = 21.")
    assert "2 × 462" in got.reasoning
    [row] = hub.calls()
    assert row["status"] == "success" and row["usage_estimated"] == 1
    assert row["completion_tokens"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_tool_calling_round_trip(hub: Hub, claude: FakeAnthropic, stream: bool) -> None:
    client = sdk(hub)
    question = [{"role": "user", "content": "Weather in San Francisco?"}]
    tool_id, name, arguments = STREAM_TOOL if stream else REPLY_TOOL
    if stream:
        got = await read_stream(
            await client.chat.completions.create(
                model="claude/claude-text", messages=question, tools=[WEATHER_TOOL], stream=True
            )
        )
        assert got.finish == "tool_calls"
        assert got.tool_calls() == [(tool_id, name, arguments)]
        said, raw_arguments = got.text, got.calls[0][2]
    else:
        reply = await client.chat.completions.create(
            model="claude/claude-text", messages=question, tools=[WEATHER_TOOL]
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls"
        [call] = choice.message.tool_calls or []
        assert call.type == "function"
        assert (call.id, call.function.name) == (tool_id, name)
        assert orjson.loads(call.function.arguments) == arguments
        said, raw_arguments = choice.message.content or "", call.function.arguments
    assert said == TEXT["stream_tool_use.sse" if stream else "message_tool_use.json"]
    sent_tools = claude.requests[0].body["tools"]
    assert sent_tools == [
        {
            "name": "get_weather",
            "description": "The weather now at a place",
            "input_schema": WEATHER_SCHEMA,
        }
    ]

    followup = [
        *question,
        {
            "role": "assistant",
            "content": said,
            "tool_calls": [
                {
                    "id": tool_id,
                    "type": "function",
                    "function": {"name": name, "arguments": raw_arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": tool_id, "content": "15°C and fog"},
    ]
    reply = await client.chat.completions.create(
        model="claude/claude-text", messages=followup, tools=[WEATHER_TOOL]
    )
    assert reply.choices[0].message.content == TEXT["message_text.json"]
    assert claude.tool_results == [
        {"type": "tool_result", "tool_use_id": tool_id, "content": "15°C and fog"}
    ]
    turns = claude.requests[-1].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][-1] == {
        "type": "tool_use", "id": tool_id, "name": name, "input": arguments,
    }  # fmt: skip
    assert [r["status"] for r in hub.calls()] == ["success", "success"]


async def test_images_arrive_as_anthropic_image_sources(hub: Hub, claude: FakeAnthropic) -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    reply = await sdk(hub).chat.completions.create(
        model="claude/claude-text", messages=[{"role": "user", "content": content}]
    )
    assert reply.choices[0].message.content == TEXT["message_text.json"]
    assert claude.requests[-1].body["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    ("model", "status", "error", "code"),
    [
        ("claude/claude-overloaded", 503, openai.InternalServerError, "service_unavailable"),
        ("claude/claude-ratelimited", 429, openai.RateLimitError, "rate_limit_exceeded"),
        ("claude/claude-unauthorized", 502, openai.InternalServerError, "upstream_auth_failed"),
        ("wrongkey/claude-text", 502, openai.InternalServerError, "upstream_auth_failed"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_upstream_errors_reach_the_sdk_with_a_fitting_status(
    hub: Hub,
    claude: FakeAnthropic,
    model: str,
    status: int,
    error: type[openai.APIStatusError],
    code: str,
    stream: bool,
) -> None:
    with pytest.raises(error) as info:
        await sdk(hub).chat.completions.create(model=model, messages=MESSAGES, stream=stream)
    assert info.value.status_code == status
    assert info.value.code == code
    said = info.value.body["message"]  # type: ignore[index]
    for secret in ("invalid x-api-key", "sk-ant", "Number of request tokens", KEY):
        assert secret not in said, "the upstream's own words reached the client"
    if status == 429:
        assert info.value.response.headers["Retry-After"] == "7"
    assert claude.requests, "the request never reached the upstream"
    [row] = await settled(hub)
    assert row["status"] == "failed" and row["upstream_status"] in (401, 429, 529)
    assert row["usage_estimated"] == 0 and row["prompt_tokens"] == 0


async def test_error_event_mid_stream_raises_in_the_sdk(hub: Hub) -> None:
    stream = await sdk(hub).chat.completions.create(
        model="claude/claude-midstream", messages=MESSAGES, stream=True
    )
    text = ""
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "Hello", "what came before the error was delivered"
    assert "overloaded" in info.value.message
    [row] = await settled(hub)
    assert row["status"] == "failed" and "overloaded" in row["error"]


async def test_concurrent_streams_keep_their_own_state(hub: Hub) -> None:
    """Nine streams at once, their upstream bytes interleaved piece by piece on the loop."""
    client = sdk(hub)
    plan = [
        ("claude-text", "stream_text.sse"),
        ("claude-unicode", "stream_unicode_cache.sse"),
        ("claude-thinking", "stream_thinking.sse"),
    ] * 3

    async def one(model: str) -> str:
        stream = await client.chat.completions.create(
            model=f"claude/{model}", messages=MESSAGES, stream=True
        )
        return (await read_stream(stream)).text

    texts = await asyncio.wait_for(asyncio.gather(*(one(m) for m, _ in plan)), 20)
    assert texts == [TEXT[name] for _, name in plan]
    rows = hub.calls()
    assert len(rows) == len(plan) and all(r["status"] == "success" for r in rows)
    by_model = {(r["model"], r["prompt_tokens"], r["completion_tokens"]) for r in rows}
    assert {m for m, _, _ in by_model} == {m for m, _ in plan}
    assert ("claude-unicode", 7979, 9) in by_model and ("claude-text", 25, 15) in by_model


@pytest.mark.parametrize(
    ("extra", "messages", "param"),
    [
        ({"n": 2}, MESSAGES, "n"),
        ({"logprobs": True}, MESSAGES, "logprobs"),
        (
            {},
            [{"role": "user", "content": [{"type": "input_audio",
              "input_audio": {"data": "UklGRg==", "format": "wav"}}]}],
            "messages[0].content[0]",
        ),
        (
            {},
            [{"role": "user", "content": [{"type": "file",
              "file": {"file_data": "data:text/plain;base64,aGk="}}]}],
            "messages[0].content[0]",
        ),
        (
            {},
            [{"role": "user", "content": [{"type": "image_url",
              "image_url": {"url": "ftp://example.com/a.png"}}]}],
            "messages[0].content[0]",
        ),
    ],
    ids=["n=2", "logprobs", "audio-part", "text-file", "ftp-image"],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_untranslatable_requests_are_a_clear_400_and_leave_no_stuck_call(
    hub: Hub,
    claude: FakeAnthropic,
    extra: dict[str, Any],
    messages: list[Any],
    param: str,
    stream: bool,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk(hub).chat.completions.create(
            model="claude/claude-text", messages=messages, stream=stream, **extra
        )
    assert info.value.status_code == 400
    assert info.value.param == param
    assert "Anthropic" in info.value.message or "https or a data URL" in info.value.message
    assert claude.requests == [], "an untranslatable request went upstream"
    assert all(row["status"] == "failed" for row in await settled(hub))


async def test_embeddings_to_anthropic_are_a_400(hub: Hub, claude: FakeAnthropic) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk(hub).embeddings.create(model="claude/claude-text", input="hi")
    assert info.value.code == "unsupported_endpoint"
    assert claude.requests == [] and all(r["status"] == "failed" for r in await settled(hub))
