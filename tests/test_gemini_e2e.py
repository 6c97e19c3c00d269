"""The openai SDK through hubproxy to Google's Gemini API (type = "gemini"), end to end.

The upstream is tests/fakes/gemini_upstream.py on loopback: it replays the captured Gemini
answers of tests/data cut into 1-7 byte writes (or byte by byte), checks each request the way
Google does, and fails on request. The SDK must get OpenAI's shapes back, the call log the
provider's own token counts, and every fault a fitting status.
"""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from tests.conftest import Hub, HubFactory
from tests.e2e import JA_REPLY, JA_STREAM, PNG, provider, read_stream, sdk, settled
from tests.fakes.gemini_upstream import CALL, KEY, FakeGemini
from tests.fakes.wire import BYTE_BY_BYTE, SMALL_PIECES, data

MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hi there"},
]
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "getWeather",
        "description": "The weather now at a place",
        "parameters": WEATHER_SCHEMA,
    },
}


@pytest.fixture
async def hub(hub_factory: HubFactory, gemini: FakeGemini) -> Hub:
    base = gemini.url + "/v1beta"
    return await hub_factory(
        [
            provider("gemini", "gemini", base, KEY),
            provider("badkey", "gemini", base, "AIzaSyWRONG-wrong-wrong-wrong-000000"),
        ]
    )


async def test_answer_is_openai_shaped_with_the_providers_usage(
    hub: Hub, gemini: FakeGemini
) -> None:
    reply = await sdk(hub).chat.completions.create(
        model="gemini/gemini-ja", messages=MESSAGES, max_tokens=100
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == JA_REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (75, 94)

    [seen] = gemini.requests
    assert seen.path == "/v1beta/models/gemini-ja:generateContent" and seen.query == {}
    assert seen.header("x-goog-api-key") == KEY and seen.header("authorization") is None
    assert hub.key not in str(seen.headers), "the client's key went upstream"
    assert seen.body == {
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 100},
    }
    [row] = hub.calls()
    assert (row["status"], row["provider"], row["model"], row["stream"]) == (
        "success", "gemini", "gemini-ja", 0,
    )  # fmt: skip
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (75, 94, 0)


@pytest.mark.parametrize(
    ("model", "sizes", "text", "reasoning", "finish", "usage"),
    [
        ("gemini-ja", SMALL_PIECES, JA_STREAM, "", "stop", (138, 15, 0)),
        # completion = candidates + thoughts = 5 + 12; CRLF line endings, a thought part
        ("gemini-crlf", SMALL_PIECES, "héllo ✓ 日本", "Weighing the greeting…", "length",
         (2100, 17, 2048)),
        ("gemini-crlf", BYTE_BY_BYTE, "héllo ✓ 日本", "Weighing the greeting…", "length",
         (2100, 17, 2048)),
    ],
    ids=["ja", "crlf-thought-cache", "crlf-byte-by-byte"],
)  # fmt: skip
async def test_streamed_text_equals_the_capture_and_usage_is_the_providers(
    hub: Hub,
    gemini: FakeGemini,
    model: str,
    sizes: tuple[int, ...],
    text: str,
    reasoning: str,
    finish: str,
    usage: tuple[int, int, int],
) -> None:
    gemini.sizes = sizes
    stream = await sdk(hub).chat.completions.create(
        model=f"gemini/{model}",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    got = await read_stream(stream)
    assert (got.text, got.reasoning, got.finish) == (text, reasoning, finish)
    assert got.usage is not None
    details = got.usage.prompt_tokens_details
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, details.cached_tokens) == usage
    seen = gemini.requests[-1]
    assert seen.path == f"/v1beta/models/{model}:streamGenerateContent"
    assert seen.query == {"alt": "sse"}
    [row] = hub.calls()
    assert row["status"] == "success" and row["stream"] == 1
    assert (row["prompt_tokens"], row["completion_tokens"]) == usage[:2]
    assert row["usage_estimated"] == 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_tool_calling_round_trip(hub: Hub, gemini: FakeGemini, stream: bool) -> None:
    client = sdk(hub)
    question = [{"role": "user", "content": "Weather in Tokyo?"}]
    if stream:
        got = await read_stream(
            await client.chat.completions.create(
                model="gemini/gemini-ja", messages=question, tools=[WEATHER_TOOL], stream=True
            )
        )
        assert got.finish == "tool_calls" and got.text == ""
        [(call_id, name, arguments)] = got.tool_calls()
        raw_arguments = got.calls[0][2]
    else:
        reply = await client.chat.completions.create(
            model="gemini/gemini-ja", messages=question, tools=[WEATHER_TOOL]
        )
        assert reply.choices[0].finish_reason == "tool_calls"
        [call] = reply.choices[0].message.tool_calls or []
        call_id, name, raw_arguments = call.id, call.function.name, call.function.arguments
        arguments = orjson.loads(raw_arguments)
    assert (name, arguments) == CALL
    assert call_id.startswith("call_")
    assert gemini.requests[0].body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "getWeather",
                    "description": "The weather now at a place",
                    "parametersJsonSchema": WEATHER_SCHEMA,
                }
            ]
        }
    ]
    [first] = hub.calls()
    # completion = candidates + thoughts = 14 + 104
    assert (first["prompt_tokens"], first["completion_tokens"]) == (83, 118)

    followup = [
        *question,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": raw_arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": '{"temp_c": 22, "sky": "曇り"}'},
    ]
    reply = await client.chat.completions.create(
        model="gemini/gemini-ja", messages=followup, tools=[WEATHER_TOOL]
    )
    assert reply.choices[0].message.content == JA_REPLY
    assert gemini.function_responses == [
        {"name": "getWeather", "response": {"temp_c": 22, "sky": "曇り"}}
    ]
    contents = gemini.requests[-1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["functionCall"] == {"name": name, "args": arguments}
    assert [r["status"] for r in hub.calls()] == ["success", "success"]


async def test_images_arrive_as_inline_and_file_data(hub: Hub, gemini: FakeGemini) -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photos/cat.png"}},
    ]
    reply = await sdk(hub).chat.completions.create(
        model="gemini/gemini-ja", messages=[{"role": "user", "content": content}]
    )
    assert reply.choices[0].message.content == JA_REPLY
    assert gemini.requests[-1].body["contents"][0]["parts"] == [
        {"text": "What is in these?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/photos/cat.png"}},
    ]


async def test_blocked_prompt_is_a_content_filter_finish(hub: Hub) -> None:
    client = sdk(hub)
    reply = await client.chat.completions.create(model="gemini/gemini-blocked", messages=MESSAGES)
    assert reply.choices[0].finish_reason == "content_filter"
    assert not reply.choices[0].message.content
    got = await read_stream(
        await client.chat.completions.create(
            model="gemini/gemini-blocked", messages=MESSAGES, stream=True
        )
    )
    assert got.finish == "content_filter" and got.text == ""
    rows = hub.calls()
    assert [(r["status"], r["prompt_tokens"]) for r in rows] == [("success", 8)] * 2


@pytest.mark.parametrize(
    ("model", "status", "error", "code"),
    [
        ("gemini/gemini-e429", 429, openai.RateLimitError, "rate_limit_exceeded"),
        ("gemini/gemini-e400", 400, openai.BadRequestError, "INVALID_ARGUMENT"),
        ("gemini/gemini-e403", 502, openai.InternalServerError, "upstream_auth_failed"),
        ("badkey/gemini-ja", 502, openai.InternalServerError, "upstream_auth_failed"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_upstream_errors_reach_the_sdk_with_a_fitting_status(
    hub: Hub,
    gemini: FakeGemini,
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
    if status == 400:  # the client's own mistake: the upstream's words, to fix it by
        assert said == "Request contains an invalid argument."
    for secret in ("Consumer", "AIza", "API key not valid", "Resource has been exhausted", KEY):
        assert secret not in said, "the upstream's own words reached the client"
    assert gemini.requests, "the request never reached the upstream"
    [row] = await settled(hub)
    assert row["status"] == "failed" and row["upstream_status"] in (400, 403, 429)
    assert row["usage_estimated"] == 0 and row["prompt_tokens"] == 0


async def test_error_event_mid_stream_raises_in_the_sdk(hub: Hub) -> None:
    stream = await sdk(hub).chat.completions.create(
        model="gemini/gemini-midstream", messages=MESSAGES, stream=True
    )
    text = ""
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "今日の東京の天気", "what came before the error was delivered"
    assert "overloaded" in info.value.message
    [row] = await settled(hub)
    assert row["status"] == "failed" and "overloaded" in row["error"]


@pytest.mark.parametrize(
    ("extra", "messages", "param"),
    [
        ({"n": 3}, MESSAGES, "n"),
        (
            {},
            [{"role": "user", "content": "hi"},
             {"role": "tool", "tool_call_id": "call_never_made", "content": "22"}],
            "messages[1].tool_call_id",
        ),
        (
            {},
            [{"role": "user", "content": [{"type": "input_audio",
              "input_audio": {"data": "UklGRg==", "format": "flac"}}]}],
            "messages[0].content[0]",
        ),
        (
            {},
            [{"role": "user", "content": [{"type": "image_url",
              "image_url": {"url": "file:///etc/passwd"}}]}],
            "messages[0].content[0]",
        ),
    ],
    ids=["n=3", "orphan-tool-result", "flac-audio", "file-url-image"],
)  # fmt: skip
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_untranslatable_requests_are_a_clear_400_and_leave_no_stuck_call(
    hub: Hub,
    gemini: FakeGemini,
    extra: dict[str, Any],
    messages: list[Any],
    param: str,
    stream: bool,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk(hub).chat.completions.create(
            model="gemini/gemini-ja", messages=messages, stream=stream, **extra
        )
    assert info.value.status_code == 400
    assert info.value.param == param and info.value.message
    assert gemini.requests == [], "an untranslatable request went upstream"
    assert all(row["status"] == "failed" for row in await settled(hub))


async def test_embeddings_through_batch_embed_contents(hub: Hub, gemini: FakeGemini) -> None:
    result = await sdk(hub).embeddings.create(
        model="gemini/gemini-embedding-001", input=["héllo", "日本"], dimensions=4
    )
    captured = orjson.loads(data("gemini/embeddings_response.json"))["embeddings"]
    assert [d.embedding for d in result.data] == [e["values"] for e in captured]
    assert [d.index for d in result.data] == [0, 1]
    seen = gemini.requests[-1]
    assert seen.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert seen.header("x-goog-api-key") == KEY
    assert seen.body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 4,
            }
            for text in ("héllo", "日本")
        ]
    }
    [row] = hub.calls()
    assert (row["status"], row["type"]) == ("success", "embedding")
    # Gemini reports no token count for embeddings: the gateway's estimate is recorded.
    assert row["usage_estimated"] == 1 and row["prompt_tokens"] > 0


async def test_embedding_errors_map_like_chat(hub: Hub) -> None:
    with pytest.raises(openai.RateLimitError):
        await sdk(hub).embeddings.create(model="gemini/gemini-e429", input="x")


async def test_embeddings_usage_told_to_the_client_is_what_was_recorded(hub: Hub) -> None:
    result = await sdk(hub).embeddings.create(
        model="gemini/gemini-embedding-001", input=["héllo", "日本"]
    )
    [row] = hub.calls()
    assert result.usage.prompt_tokens == row["prompt_tokens"] > 0
