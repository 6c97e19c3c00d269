"""The anthropic format: requests, replies, streams, errors, and the /v1/messages adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from hubproxy.billing.tokens import units
from hubproxy.config import ProviderSettings
from hubproxy.errors import BadRequest, HubError
from hubproxy.providers import make
from hubproxy.providers.anthropic.provider import (
    AnthropicPassthroughStream,
    AnthropicProvider,
    AnthropicStream,
    MessagesStreamFromOpenAI,
    anthropic_error_body,
    messages_reply_from_openai,
    openai_request_from_messages,
)
from hubproxy.providers.base import StreamTranslator, Usage
from hubproxy.providers.gemini.provider import GeminiStream
from hubproxy.providers.openai.provider import OpenAIStream
from hubproxy.providers.sse import Decoder

DATA = Path(__file__).parent.parent / "data"
SETTINGS = ProviderSettings(
    name="claude", type="anthropic", base_url="https://api.anthropic.com/v1"
)
EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def provider(**kw: Any) -> AnthropicProvider:
    fields = {"name": "claude", "type": "anthropic", "base_url": SETTINGS.base_url, **kw}
    return AnthropicProvider(ProviderSettings(**fields))


def request(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(provider().chat_request(body, "claude-x", stream).body)
    return out


def cuts(raw: bytes) -> Iterator[list[bytes]]:
    """The stream whole, cut in two at every byte boundary, and one byte at a time."""
    yield [raw]
    for k in range(1, len(raw)):
        yield [raw[:k], raw[k:]]
    yield [raw[i : i + 1] for i in range(len(raw))]


def replay(translator: StreamTranslator, chunks: list[bytes]) -> bytes:
    """Decode the chunks as the pipeline does and collect the translator's bytes, end() last."""
    decoder, out = Decoder(), []
    for chunk in chunks:
        out += [translator.feed(event) for event in decoder.feed(chunk)]
    out += [translator.feed(event) for event in decoder.close()]
    assert translator.finished
    body = b"".join(out)
    return body + b"\x00" + translator.end()  # NUL: where feed's bytes end and end()'s begin


def data_events(sse: bytes) -> list[tuple[str | None, Any]]:
    return [
        (e.event, orjson.loads(e.data))
        for e in Decoder().feed(sse)
        if e.data is not None and e.data != b"[DONE]"
    ]


def same_for_every_cut(raw: bytes, make_translator: Any) -> tuple[bytes, StreamTranslator]:
    outputs = set()
    translator = make_translator()
    for chunks in cuts(raw):
        translator = make_translator()
        outputs.add(replay(translator, chunks))
    assert len(outputs) == 1, "the output depends on where the upstream bytes were cut"
    return outputs.pop(), translator


# --- requests -------------------------------------------------------------------------------


def test_url_and_headers() -> None:
    req = provider().chat_request({"messages": [{"role": "user", "content": "hi"}]}, "m", False)
    assert req.url == "https://api.anthropic.com/v1/messages"
    assert req.headers == {"anthropic-version": "2023-06-01"}
    custom = provider(api_version="2024-01-01", headers={"anthropic-beta": "x"})
    assert custom.chat_request({"messages": [{"role": "user", "content": "hi"}]}, "m", False)
    assert dict(custom._headers) == {"anthropic-version": "2024-01-01", "anthropic-beta": "x"}
    assert provider().auth_headers("k") == {"x-api-key": "k"}
    assert isinstance(make(SETTINGS), AnthropicProvider)


def test_system_roles_merging_and_defaults() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "héllo"},
            {"role": "user", "content": [{"type": "text", "text": "✓ 日本"}]},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "Bonjour"},
        ]
    }
    out = request(body)
    assert out["model"] == "claude-x"
    assert out["max_tokens"] == 4096
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "héllo"}, {"type": "text", "text": "✓ 日本"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
    ]
    assert "stream" not in out
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}  # not mutated
    one = request(
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"}]}
    )
    assert one["system"] == "S"


def test_images() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    out = request({"messages": [{"role": "user", "content": content}]})
    assert out["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    for url in ("ftp://x/y.png", "data:image/png,notbase64", "data:;base64,AAAA"):
        bad = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
        with pytest.raises(BadRequest):
            request({"messages": [bad]})


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_tools_and_tool_choice() -> None:
    base = {"messages": [{"role": "user", "content": "weather?"}], "tools": [WEATHER]}
    out = request(base)
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert "tool_choice" not in out
    named = {"type": "function", "function": {"name": "get_weather"}}
    for choice, expected in (
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (named, {"type": "tool", "name": "get_weather"}),
    ):
        assert request({**base, "tool_choice": choice})["tool_choice"] == expected
    no_parallel = request({**base, "parallel_tool_calls": False})
    assert no_parallel["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    no_schema = {"type": "function", "function": {"name": "now"}}
    assert request({**base, "tools": [no_schema]})["tools"][0]["input_schema"] == {
        "type": "object",
        "properties": {},
    }
    # a tool_choice without tools is moot, and Anthropic would refuse it
    assert "tool_choice" not in request({**base, "tools": [], "tool_choice": "auto"})
    with pytest.raises(BadRequest) as err:
        request({**base, "tools": [{"type": "web_search"}]})
    assert err.value.param == "tools[0]"
    with pytest.raises(BadRequest):
        request({**base, "tool_choice": "sometimes"})


def test_tool_calls_and_results() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "東京"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
            {"role": "user", "content": "and in Kelvin?"},  # text between: must follow results
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "22"}]},
        ],
        "tools": [WEATHER],
    }
    out = request(body)
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "東京"}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "22"},
        {"type": "text", "text": "and in Kelvin?"},
    ]
    broken = orjson.loads(orjson.dumps(body))
    broken["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"location": '
    with pytest.raises(BadRequest) as err:
        request(broken)
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"
    broken["messages"][1]["tool_calls"][0]["function"]["arguments"] = "[1, 2]"
    with pytest.raises(BadRequest):
        request(broken)


def test_options() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    out = request(
        {
            "messages": msgs,
            "max_tokens": 100,
            "max_completion_tokens": 50,
            "stop": "END",
            "temperature": 0.5,
            "top_p": 0.9,
            "user": "u-1",
        },
        stream=True,
    )
    assert out["max_tokens"] == 50
    assert out["stop_sequences"] == ["END"]
    assert (out["temperature"], out["top_p"]) == (0.5, 0.9)
    assert out["metadata"] == {"user_id": "u-1"}
    assert out["stream"] is True
    assert request({"messages": msgs, "stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]
    json_mode = request({"messages": msgs, "response_format": {"type": "json_object"}})
    assert "JSON" in json_mode["system"]
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    spec = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    with_schema = request({"messages": msgs, "response_format": spec})
    assert orjson.dumps(schema).decode() in with_schema["system"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "stop": 3}, "stop"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "AA"}}],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ],
)
def test_untranslatable_input_is_a_bad_request(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as err:
        request(body)
    assert err.value.status == 400
    assert err.value.param == param


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "x", "日本", "data:image/png;base64,AAAA", "https://e.com/a.png", "{}"])
    | st.sampled_from(["user", "assistant", "system", "tool", "developer", "text", "image_url"])
    | st.sampled_from(["tool_use", "tool_result", "image", "base64", "url", "document"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "text",
                    "image_url",
                    "url",
                    "tool_calls",
                    "tool_call_id",
                    "id",
                    "function",
                    "name",
                    "arguments",
                    "refusal",
                    "file",
                    "file_data",
                    "input_audio",
                    "tool_use_id",
                    "input",
                    "source",
                    "media_type",
                    "data",
                    "is_error",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    messages=st.lists(JSONISH, max_size=5) | JSONISH,
    extra=st.dictionaries(
        st.sampled_from(["tools", "tool_choice", "stop", "n", "response_format", "max_tokens"]),
        JSONISH,
        max_size=2,
    ),
)
def test_arbitrary_input_only_raises_client_errors(messages: Any, extra: dict[str, Any]) -> None:
    for translate in (
        lambda b: provider().chat_request(b, "m", True),
        lambda b: openai_request_from_messages({**b, "model": "m", "max_tokens": 5}),
    ):
        try:
            translate({"messages": messages, **extra})
        except HubError as err:
            assert err.status < 500, err


# --- replies --------------------------------------------------------------------------------


def test_reply_text() -> None:
    reply = provider().chat_reply(data("anthropic/message_text.json"))
    completion = ChatCompletion.model_validate_json(reply.body)
    assert completion.id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert completion.model == "claude-3-5-sonnet-20240620"
    assert completion.choices[0].message.content == "Hi! My name is Claude."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 2598
    assert reply.usage == Usage(prompt_tokens=2095, completion_tokens=503)


def test_reply_tool_use_with_cache() -> None:
    reply = provider().chat_reply(data("anthropic/message_tool_use.json"))
    completion = ChatCompletion.model_validate_json(reply.body)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the current weather in San Francisco for you."
    (call,) = choice.message.tool_calls or []
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = orjson.loads(call.function.arguments)  # type: ignore[union-attr]
    assert arguments == {"location": "San Francisco, CA", "unit": "celsius"}
    assert reply.usage == Usage(prompt_tokens=4572, completion_tokens=89, cached_tokens=4100)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4100


def test_reply_that_is_not_a_message_is_an_upstream_error() -> None:
    for body in (b"<html>", b"[]", b'{"id": "x"}'):
        with pytest.raises(HubError) as err:
            provider().chat_reply(body)
        assert err.value.status == 502


# --- streams --------------------------------------------------------------------------------

STREAMS = {
    "anthropic/stream_text.sse": ("Hello!", None, "stop", Usage(25, 15)),
    "anthropic/stream_tool_use.sse": (
        "Okay, let's check the weather for San Francisco, CA:",
        (
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "get_weather",
            {"location": "San Francisco, CA", "unit": "fahrenheit"},
        ),
        "tool_calls",
        Usage(472, 89),
    ),
    "anthropic/stream_thinking.sse": (
        "The greatest common divisor of 1071 and 462 is **21**.",
        None,
        "stop",
        None,
    ),
    "anthropic/stream_unicode_cache.sse": (
        "héllo ✓ 日本",
        None,
        "stop",
        Usage(2679 + 1200 + 4100, 9, cached_tokens=4100, cache_creation_tokens=1200),
    ),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_translation(name: str, include_usage: bool) -> None:
    text, call, finish, usage = STREAMS[name]
    raw = data(name)
    out, translator = same_for_every_cut(raw, lambda: AnthropicStream(include_usage, created=0))
    assert translator.usage == usage
    body, end = out.split(b"\x00")
    assert end == b"data: [DONE]\n\n" and b"[DONE]" not in body
    chunks = [ChatCompletionChunk.model_validate(obj) for _, obj in data_events(body)]
    assert len({(c.id, c.model, c.created) for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert got == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == [finish]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    if call is None:
        assert calls == []
    else:
        assert calls[0].id == call[0] and calls[0].function.name == call[1]  # type: ignore[union-attr]
        arguments = "".join(tc.function.arguments or "" for tc in calls)  # type: ignore[union-attr]
        assert orjson.loads(arguments) == call[2]
        assert {tc.index for tc in calls} == {0}
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage and usage is not None:
        assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
        assert chunks[-1].choices == []
        assert chunks[-1].usage.prompt_tokens == usage.prompt_tokens  # type: ignore[union-attr]
        assert chunks[-1].usage.completion_tokens == usage.completion_tokens  # type: ignore[union-attr]
    else:
        assert usage_chunks == []
    assert translator.text_chars >= len(text)


def test_stream_thinking_becomes_reasoning_content() -> None:
    out, _ = same_for_every_cut(
        data("anthropic/stream_thinking.sse"), lambda: AnthropicStream(False, 0)
    )
    chunks = [ChatCompletionChunk.model_validate(o) for _, o in data_events(out.split(b"\x00")[0])]
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks
    )
    assert reasoning.startswith("I need to find the GCD") and "2 \u00d7 462" in reasoning


def test_stream_error_event_raises_the_mapped_error() -> None:
    translator = AnthropicStream(False, 0)
    events = Decoder().feed(data("anthropic/stream_error.sse"))
    assert translator.feed(events[0]).startswith(b"data: ")
    assert translator.feed(events[1]) == b""  # ping
    with pytest.raises(HubError) as err:
        translator.feed(events[2])
    assert err.value.status == 503  # overloaded_error is Anthropic's 529
    assert not translator.finished


def test_several_tool_calls_are_numbered_from_zero() -> None:
    objs: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "model": "c",
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        },
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "b", "name": "g", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    sse = b"".join(
        b"event: %s\ndata: %s\n\n" % (obj["type"].encode(), orjson.dumps(obj)) for obj in objs
    )
    out = replay(AnthropicStream(False, 0), [sse]).split(b"\x00")[0]
    calls = [
        tc for _, o in data_events(out) for tc in o["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert [(c["index"], c.get("id")) for c in calls] == [(0, "a"), (0, None), (1, "b"), (1, None)]


def test_passthrough_stream() -> None:
    raw = data("anthropic/stream_unicode_cache.sse")
    for chunks in list(cuts(raw))[::7]:
        translator = AnthropicPassthroughStream()
        body, end = replay(translator, chunks).split(b"\x00")
        assert body + end == raw  # every byte as the upstream sent it
        assert end == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        assert translator.usage == STREAMS["anthropic/stream_unicode_cache.sse"][3]
        assert translator.text_chars == units("héllo ✓ 日本")
    # An error event: what came before it passes through byte for byte, then it is raised
    # (the pipeline sends it on as one Anthropic error event).
    errored = AnthropicPassthroughStream()
    raw = data("anthropic/stream_error.sse")
    events = Decoder().feed(raw)
    [at] = [i for i, e in enumerate(events) if e.event == "error"]
    assert b"".join(errored.feed(e) for e in events[:at]) == b"".join(e.raw for e in events[:at])
    with pytest.raises(HubError) as info:
        errored.feed(events[at])
    assert info.value.status == 503


# --- errors ---------------------------------------------------------------------------------


def test_error_mapping() -> None:
    p = provider()
    assert p.error(529, data("anthropic/error_overloaded.json")).status == 503
    auth = p.error(
        401,
        b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
    )
    assert (auth.status, auth.code) == (502, "upstream_auth_failed")
    missing = p.error(404, data("anthropic/error_not_found.json"))
    assert missing.status == 404 and "could not be found" in missing.message
    assert (
        p.error(
            429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}'
        ).status
        == 429
    )
    assert (
        p.error(
            400, b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}'
        ).status
        == 400
    )
    assert p.error(500, b"<html>oops</html>").status == 502
    assert p.error(413, b"request too large").status == 413


def test_no_embeddings() -> None:
    with pytest.raises(BadRequest) as err:
        provider().embeddings_request({"input": "x"}, "m")
    assert err.value.code == "unsupported_endpoint"


# --- the /v1/messages adapter ---------------------------------------------------------------

ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse."}],
    "messages": [
        {"role": "user", "content": "Weather in 東京?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "東京"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "22°C"}],
                },
                {"type": "text", "text": "Thanks, and this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather now",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.2,
    "top_k": 5,
    "stream": True,
}


def test_inbound_request() -> None:
    out = openai_request_from_messages(ANTHROPIC_REQUEST)
    assert out["model"] == "claude-x" and out["max_tokens"] == 1024
    assert out["messages"][0] == {"role": "system", "content": "You are terse."}
    assert out["messages"][1] == {"role": "user", "content": "Weather in 東京?"}
    assert out["messages"][2] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"東京"}'},
            }
        ],
    }
    assert out["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "22°C"}
    assert out["messages"][4]["role"] == "user"
    assert [p["type"] for p in out["messages"][4]["content"]] == ["text", "image_url", "image_url"]
    assert (
        out["messages"][4]["content"][1]["image_url"]["url"] == "data:image/png;base64,iVBORw0KGgo="
    )
    assert out["tools"][0]["function"]["name"] == "get_weather"
    assert out["tool_choice"] == "auto" and out["parallel_tool_calls"] is False
    assert out["stop"] == ["END"] and out["temperature"] == 0.2 and "top_k" not in out
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    # and back: the outbound translation restores Anthropic's own request (but the thinking)
    back = request(out, stream=True)
    assert back["system"] == "You are terse."
    assert back["messages"][1]["content"] == ANTHROPIC_REQUEST["messages"][1]["content"][1:]
    assert back["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "22°C",
    }
    assert back["tools"][0]["input_schema"] == ANTHROPIC_REQUEST["tools"][0]["input_schema"]
    assert back["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"tool_choice": {"type": "maybe"}}, "tool_choice"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"system": 5}, "system"),
        (
            {"messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            "messages[0].content[0]",
        ),
    ],
)
def test_inbound_bad_requests(change: dict[str, Any], param: str) -> None:
    body = {**ANTHROPIC_REQUEST, **change}
    with pytest.raises(BadRequest) as err:
        openai_request_from_messages({k: v for k, v in body.items() if v is not None})
    assert err.value.param == param


def test_inbound_reply() -> None:
    out = messages_reply_from_openai(data("openai/completion_tool_call.json"), "claude-x")
    message = Message.model_validate_json(out)
    assert message.model == "claude-x" and message.id.startswith("msg_")
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "héllo ✓ 日本, checking"  # type: ignore[union-attr]
    assert message.content[1].input == {"location": "東京"}  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (18, 17)
    assert message.usage.cache_read_input_tokens == 64
    # a Gemini answer, through the Gemini provider, then back to Anthropic's shape
    gemini = make(ProviderSettings(name="g", type="gemini", base_url="https://g/v1beta"))
    reply = gemini.chat_reply(data("gemini/response_ja.json"))
    message = Message.model_validate_json(messages_reply_from_openai(reply.body, "gemini"))
    assert message.content[0].text.startswith("紀元43年")  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 75


def replay_messages(inner: Any, raw: bytes) -> tuple[list[Any], MessagesStreamFromOpenAI, bytes]:
    """The adapter over `inner`, checked cut by cut; its events, validated by the SDK."""
    out, wrapper = same_for_every_cut(
        raw, lambda: MessagesStreamFromOpenAI(inner(), model="claude-x")
    )
    body, end = out.split(b"\x00")
    assert end == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    events = [EVENT.validate_python(obj) for _, obj in data_events(body + end)]
    for name, obj in data_events(body + end):
        assert name == obj["type"]  # the SSE event name matches the data's type
    return events, wrapper, body + end  # type: ignore[return-value]


def final_message(events: list[Any]) -> Any:
    snapshot = None
    buffers: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
    return snapshot


def test_inbound_stream_from_openai_upstream() -> None:
    raw = data("openai/stream_text_tools.sse")
    events, wrapper, _ = replay_messages(lambda: OpenAIStream(strip_usage=False), raw)
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-2].type == "message_delta" and events[-1].type == "message_stop"
    message = final_message(events)
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "héllo ✓ 日本, checking"
    assert (message.content[1].id, message.content[1].input) == (
        "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        {"location": "東京"},
    )
    assert (message.content[2].name, message.content[2].input) == ("get_time", {"tz": "Asia/Tokyo"})
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 41 and message.usage.input_tokens == 18
    assert message.usage.cache_read_input_tokens == 64
    assert wrapper.usage == Usage(prompt_tokens=82, completion_tokens=41, cached_tokens=64)
    starts = [e.index for e in events if e.type == "content_block_start"]
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert starts == stops == [0, 1, 2]


def test_inbound_stream_from_gemini_upstream() -> None:
    raw = data("gemini/stream_text_ja.sse")
    events, wrapper, _ = replay_messages(lambda: GeminiStream(include_usage=True, created=0), raw)
    message = final_message(events)
    assert message.content[0].text == "今日の東京の天気は曇りで、気温は22度です。\n"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (138, 15)
    assert wrapper.text_chars == units(message.content[0].text)


def test_inbound_stream_from_anthropic_upstream_keeps_the_meaning() -> None:
    raw = data("anthropic/stream_tool_use.sse")
    events, _, _ = replay_messages(lambda: AnthropicStream(include_usage=True, created=0), raw)
    message = final_message(events)
    assert message.content[0].text == "Okay, let's check the weather for San Francisco, CA:"
    assert message.content[1].input == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (472, 89)
    raw = data("anthropic/stream_thinking.sse")
    events, _, _ = replay_messages(lambda: AnthropicStream(include_usage=False, created=0), raw)
    assert [b.type for b in final_message(events).content] == ["thinking", "text"]


def test_anthropic_error_body() -> None:
    for status, kind in (
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (503, "overloaded_error"),
        (502, "api_error"),
        (500, "api_error"),
    ):
        body = orjson.loads(anthropic_error_body(HubError("nope", status=status)))
        assert body == {"type": "error", "error": {"type": kind, "message": "nope"}}
