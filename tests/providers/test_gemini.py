"""The gemini format: request, reply and stream translation, embeddings and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from hubproxy.billing.tokens import units
from hubproxy.config import ProviderSettings
from hubproxy.errors import BadRequest, HubError
from hubproxy.providers import make
from hubproxy.providers.base import Usage
from hubproxy.providers.gemini.provider import GeminiProvider, GeminiStream
from hubproxy.providers.gemini.request import SKIP_SIGNATURE
from hubproxy.providers.sse import Decoder, Event
from tests.providers.test_anthropic import JSONISH, data_events, same_for_every_cut

DATA = Path(__file__).parent.parent / "data"
BASE = "https://generativelanguage.googleapis.com/v1beta"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def provider(**kw: Any) -> GeminiProvider:
    return GeminiProvider(ProviderSettings(name="g", type="gemini", base_url=BASE, **kw))


def request(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(
        provider().chat_request(body, "gemini-2.5-flash", stream).body
    )
    return out


# --- requests -------------------------------------------------------------------------------


def test_urls_and_headers() -> None:
    msgs = {"messages": [{"role": "user", "content": "hi"}]}
    assert provider().chat_request(msgs, "gemini-2.5-flash", False).url == (
        f"{BASE}/models/gemini-2.5-flash:generateContent"
    )
    assert provider().chat_request(msgs, "models/gemini-2.5-flash", True).url == (
        f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert provider().auth_headers("k") == {"x-goog-api-key": "k"}
    assert provider(headers={"x-goog-user-project": "p"}).chat_request(
        msgs, "m", False
    ).headers == {"x-goog-user-project": "p"}
    assert isinstance(
        make(ProviderSettings(name="g", type="gemini", base_url=BASE)), GeminiProvider
    )


def test_roles_system_and_merging() -> None:
    out = request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "héllo"},
                {"role": "user", "content": [{"type": "text", "text": "✓ 日本"}]},
                {"role": "assistant", "content": "Bonjour"},
            ]
        }
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "héllo"}, {"text": "✓ 日本"}]},
        {"role": "model", "parts": [{"text": "Bonjour"}]},
    ]
    assert "generationConfig" not in out and "tools" not in out


def test_media_parts() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
        {"type": "image_url", "image_url": "https://example.com/no-extension"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
    ]
    out = request({"messages": [{"role": "user", "content": content}]})
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/no-extension"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


WEATHER = {
    "type": "function",
    "function": {
        "name": "getWeather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": ["string", "null"]}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}


def test_tools_tool_choice_and_tool_results() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "今日の東京の天気を教えて"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "getWeather", "arguments": '{"location": "Tokyo"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "getTime", "arguments": ""},
                    },
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_a",
                "content": '{"temperature": 22, "condition": "Cloudy"}',
            },
            {"role": "tool", "tool_call_id": "call_b", "content": "09:00"},
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "getWeather"}},
    }
    out = request(body)
    assert out["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "getWeather", "args": {"location": "Tokyo"}},
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"name": "getTime", "args": {}}},
        ],
    }
    assert out["contents"][2] == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "getWeather",
                    "response": {"temperature": 22, "condition": "Cloudy"},
                }
            },
            {"functionResponse": {"name": "getTime", "response": {"output": "09:00"}}},
        ],
    }
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "getWeather",
                    "description": "Current weather",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],  # type: ignore[index]
                }
            ]
        }
    ]
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["getWeather"]}
    }
    for choice, mode in (("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")):
        config = request({**body, "tool_choice": choice})["toolConfig"]
        assert config == {"functionCallingConfig": {"mode": mode}}
    stray: dict[str, Any] = {"role": "tool", "tool_call_id": "nope", "content": "x"}
    orphan = {**body, "messages": [*body["messages"], stray]}  # type: ignore[misc]
    with pytest.raises(BadRequest) as err:
        request(orphan)
    assert err.value.param == "messages[4].tool_call_id"


def test_generation_config() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": False,
    }
    out = request(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 100,
            "temperature": 0.3,
            "top_p": 0.8,
            "stop": "END",
            "seed": 7,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        }
    )
    assert out["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.3,
        "topP": 0.8,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "seed": 7,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }
    json_object = request(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
        }
    )
    assert json_object["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": None}, "messages"),
        ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 3}, "n"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "A", "format": "flac"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "retrieval"}]},
            "tools[0]",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
            "response_format",
        ),
    ],
)
def test_untranslatable_input_is_a_bad_request(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as err:
        request(body)
    assert err.value.status == 400 and err.value.param == param


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    messages=st.lists(JSONISH, max_size=5) | JSONISH,
    extra=st.dictionaries(
        st.sampled_from(["tools", "tool_choice", "stop", "n", "response_format", "seed"]),
        JSONISH,
        max_size=2,
    ),
)
def test_arbitrary_input_only_raises_client_errors(messages: Any, extra: dict[str, Any]) -> None:
    try:
        provider().chat_request({"messages": messages, **extra}, "m", True)
    except HubError as err:
        assert err.status < 500, err


# --- replies --------------------------------------------------------------------------------


def test_reply_text() -> None:
    reply = provider().chat_reply(data("gemini/response_ja.json"))
    completion = ChatCompletion.model_validate_json(reply.body)
    assert completion.model == "gemini-2.0-flash"
    assert completion.choices[0].message.content.startswith("紀元43年")  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "stop"
    assert reply.usage == Usage(prompt_tokens=75, completion_tokens=94)


def test_reply_function_call() -> None:
    reply = provider().chat_reply(data("gemini/response_function_call.json"))
    completion = ChatCompletion.model_validate_json(reply.body)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"  # Gemini says STOP
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_qpc2afWVFJK4vr0Pq6WiyAU_0"
    assert call.function.name == "getWeather"  # type: ignore[union-attr]
    assert orjson.loads(call.function.arguments) == {"location": "Tokyo"}  # type: ignore[union-attr]
    # thinking tokens are generated tokens: 14 + 104, and the total is Gemini's own 201
    assert reply.usage == Usage(prompt_tokens=83, completion_tokens=118)
    assert completion.usage is not None and completion.usage.total_tokens == 201


def test_reply_blocked_prompt() -> None:
    reply = provider().chat_reply(data("gemini/response_blocked.json"))
    completion = ChatCompletion.model_validate_json(reply.body)
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""
    assert reply.usage == Usage(prompt_tokens=8, completion_tokens=0)


def test_reply_without_candidates_is_an_upstream_error() -> None:
    for body in (b"{}", b"nope", b"[1]"):
        with pytest.raises(HubError) as err:
            provider().chat_reply(body)
        assert err.value.status == 502


# --- streams --------------------------------------------------------------------------------

STREAMS = {
    "gemini/stream_text_ja.sse": (
        "今日の東京の天気は曇りで、気温は22度です。\n",
        "stop",
        Usage(138, 15),
    ),
    "gemini/stream_function_call.sse": ("", "tool_calls", Usage(83, 118)),
    "gemini/stream_unicode_crlf.sse": (
        "héllo ✓ 日本",
        "length",
        Usage(2100, 17, cached_tokens=2048),
    ),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_translation(name: str, include_usage: bool) -> None:
    text, finish, usage = STREAMS[name]
    out, translator = same_for_every_cut(data(name), lambda: GeminiStream(include_usage, created=0))
    assert translator.usage == usage
    body, end = out.split(b"\x00")
    assert end == b"data: [DONE]\n\n" and b"[DONE]" not in body
    chunks = [ChatCompletionChunk.model_validate(obj) for _, obj in data_events(body)]
    assert len({(c.id, c.model, c.created) for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == [finish]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens == usage.prompt_tokens
        assert chunks[-1].usage.completion_tokens == usage.completion_tokens
    else:
        assert all(c.usage is None for c in chunks)


def test_stream_function_call_and_thoughts() -> None:
    out, _ = same_for_every_cut(
        data("gemini/stream_function_call.sse"), lambda: GeminiStream(False, 0)
    )
    chunks = [ChatCompletionChunk.model_validate(o) for _, o in data_events(out.split(b"\x00")[0])]
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1
    assert (calls[0].index, calls[0].id) == (0, "call_qpc2afWVFJK4vr0Pq6WiyAU_0")
    assert orjson.loads(calls[0].function.arguments) == {"location": "Tokyo"}  # type: ignore[union-attr, arg-type]
    out, translator = same_for_every_cut(
        data("gemini/stream_unicode_crlf.sse"), lambda: GeminiStream(False, 0)
    )
    chunks = [ChatCompletionChunk.model_validate(o) for _, o in data_events(out.split(b"\x00")[0])]
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks
    )
    assert reasoning == "Weighing the greeting…"
    assert translator.text_chars == units(reasoning) + units("héllo ✓ 日本")


def test_stream_finishes_at_finish_reason_and_keeps_reading_usage() -> None:
    translator = GeminiStream(include_usage=False, created=0)
    first, last = Decoder().feed(data("gemini/stream_text_ja.sse"))
    translator.feed(first)
    assert not translator.finished
    translator.feed(last)
    assert translator.finished
    late = (
        b'data: {"candidates": [], "usageMetadata":'
        b' {"promptTokenCount": 138, "candidatesTokenCount": 16}}\n\n'
    )
    (event,) = Decoder().feed(late)
    assert translator.feed(event) == b""
    assert translator.usage == Usage(138, 16)


def test_stream_error_event() -> None:
    event = Event(None, data("gemini/error_429.json").replace(b"\n", b""), b"")
    with pytest.raises(HubError) as err:
        GeminiStream(False, 0).feed(event)
    assert err.value.status == 429


# --- embeddings -----------------------------------------------------------------------------


def test_embeddings() -> None:
    req = provider().embeddings_request(
        {"input": ["héllo", "日本"], "dimensions": 4}, "gemini-embedding-001"
    )
    assert req.url == f"{BASE}/models/gemini-embedding-001:batchEmbedContents"
    assert orjson.loads(req.body) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "héllo"}]},
                "outputDimensionality": 4,
            },
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "日本"}]},
                "outputDimensionality": 4,
            },
        ]
    }
    single = orjson.loads(
        provider().embeddings_request({"input": "one"}, "text-embedding-004").body
    )
    assert single["requests"] == [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "one"}]}}
    ]
    reply = provider().embeddings_reply(data("gemini/embeddings_response.json"))
    assert reply.usage is None  # Gemini does not count: the gateway estimates
    parsed = CreateEmbeddingResponse.model_validate_json(reply.body)
    assert [d.index for d in parsed.data] == [0, 1]
    assert parsed.data[1].embedding[0] == pytest.approx(-0.010955574)
    bad: dict[str, Any]
    for bad in (
        {"input": [1, 2, 3]},
        {"input": []},
        {"input": None},
        {"input": "x", "dimensions": -1},
    ):
        with pytest.raises(BadRequest):
            provider().embeddings_request(bad, "m")
    with pytest.raises(HubError) as err:
        provider().embeddings_reply(b'{"nope": 1}')
    assert err.value.status == 502


# --- errors ---------------------------------------------------------------------------------


def test_error_mapping() -> None:
    p = provider()
    assert p.error(429, data("gemini/error_429.json")).status == 429
    key = p.error(400, data("gemini/error_api_key_invalid.json"))
    assert (key.status, key.code) == (502, "upstream_auth_failed")
    denied = b'{"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}'
    assert (p.error(403, denied).status, p.error(403, denied).code) == (502, "upstream_auth_failed")
    busy = (
        b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    )
    assert p.error(503, busy).status == 503
    invalid = (
        b'{"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"}}'
    )
    err = p.error(400, invalid)
    assert (err.status, err.code) == (400, "INVALID_ARGUMENT") and "Invalid JSON" in err.message
    assert (
        p.error(
            404, b'[{"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}}]'
        ).status
        == 404
    )
    assert p.error(502, b"<html>Bad Gateway</html>").status == 502
