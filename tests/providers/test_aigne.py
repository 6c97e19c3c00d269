"""AIGNE v2 translation: requests to OpenAI bodies, replies and streams back, field by field
against captured and documented examples (tests/data/aigne)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from hubproxy.errors import BadRequest, PaymentRequired, UpstreamError
from hubproxy.providers import aigne
from hubproxy.providers.base import Usage
from hubproxy.providers.openai.provider import OpenAIStream
from hubproxy.providers.sse import Decoder

DATA = Path(__file__).resolve().parents[1] / "data"


def load(name: str) -> Any:
    return orjson.loads((DATA / name).read_bytes())


def test_the_sdk_request_becomes_an_openai_stream_request() -> None:
    body, json_mode = aigne.chat_request(load("aigne/chat_request_sdk.json"))
    assert body == {
        "model": "demo/echo",
        "messages": [{"role": "user", "content": "…"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert json_mode is False
    unstreamed = load("aigne/chat_request_sdk.json")
    del unstreamed["options"]["streaming"]
    assert "stream" not in aigne.chat_request(unstreamed)[0]


def test_roles_parts_tools_options_and_format() -> None:
    body, json_mode = aigne.chat_request(load("aigne/chat_request_tools.json"))
    assert json_mode is True
    assert body["model"] == "openai/gpt-4o"  # modelOptions.model wins over the top level
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in 東京?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"location":"東京","days":2}'}}]},
        {"role": "tool", "content": '{"temp":21}', "tool_call_id": "call_1"},
    ]  # fmt: skip
    assert (body["temperature"], body["top_p"], body["frequency_penalty"]) == (0.2, 0.9, 0.1)
    assert (body["presence_penalty"], body["parallel_tool_calls"]) == (0, False)
    assert body["reasoning_effort"] == "low"
    assert body["tool_choice"] == "auto" and body["tools"][0]["function"]["name"] == "get_weather"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object", "properties": {
            "summary": {"type": "string"}}}, "strict": True}}  # fmt: skip
    assert "cacheConfig" not in body and "cache_config" not in body


def test_the_model_falls_back_to_the_top_level_then_the_default() -> None:
    body = {"input": {"messages": [{"role": "user", "content": "hi"}]}, "model": "a/b"}
    assert aigne.chat_request(body)[0]["model"] == "a/b"
    del body["model"]
    assert aigne.chat_request(body)[0]["model"] == aigne.DEFAULT_MODEL
    assert aigne.chat_request(body, default_model="demo/echo")[0]["model"] == "demo/echo"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"input": {"messages": []}},
        {"input": {"messages": [{"role": "assistant", "content": "hi"}]}},
        {"input": {"messages": [{"role": "user"}]}},
        {"input": {"messages": [{"role": "user", "content": [{"type": "local", "path": "/x"}]}]}},
        {"input": {"messages": [{"role": "user", "content": [
            {"type": "url", "url": "https://x/a.pdf", "mimeType": "application/pdf"}]}]}},
        {"input": {"messages": [{"role": "tool", "content": "x"}]}},
        {"input": {"messages": [{"role": "agent", "toolCalls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}},
        {"input": {"messages": [{"role": "user", "content": "hi"}],
                   "modelOptions": {"temperature": "hot"}}},
        {"input": {"messages": [{"role": "user", "content": "hi"}], "toolChoice": 3}},
        {"input": {"messages": [{"role": "user", "content": "hi"}],
                   "responseFormat": {"type": "xml"}}},
        {"input": {"messages": [{"role": "user", "content": "hi"}], "modelOptions": {"model": 5}}},
    ],
)  # fmt: skip
def test_bad_v2_chat_requests_are_400(body: Any) -> None:
    with pytest.raises(BadRequest):
        aigne.chat_request(body)


COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "héllo ✓ 日本", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"location\":\"東京\"}"}}]}}],
    "usage": {"prompt_tokens": 82, "completion_tokens": 41, "total_tokens": 123,
              "prompt_tokens_details": {"cached_tokens": 64}},
}  # fmt: skip


def test_the_whole_reply_matches_the_documented_shape() -> None:
    got = aigne.chat_reply(orjson.dumps(COMPLETION), model="openai/gpt-4o", debit=1523,
                           credit_prefix="$")  # fmt: skip
    assert orjson.loads(got) == load("aigne/chat_reply.json")
    assert b'"aigneHubCredits":0.001523' in got  # a number, written exactly


def test_a_json_answer_is_the_json_field() -> None:
    completion = {**COMPLETION, "choices": [{"index": 0, "message": {
        "role": "assistant", "content": '{"summary":"sunny"}'}}]}  # fmt: skip
    got = orjson.loads(aigne.chat_reply(orjson.dumps(completion), model="m/x", debit=0,
                                        json_mode=True))  # fmt: skip
    assert got["json"] == {"summary": "sunny"} and "text" not in got
    assert got["usage"]["aigneHubCredits"] == 0


@pytest.mark.parametrize("micro", [0, 1, 1523, 10**6, 123_456_789_123_456, 10**15 - 1])
def test_credits_are_the_debit_exactly(micro: int) -> None:
    text = orjson.dumps(aigne.credits_number(micro)).decode()
    assert Decimal(text) * 10**6 == micro


def test_completions_request_and_reply() -> None:
    body = {"model": "openai/gpt-4o", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "toolCalls": [{"id": "c", "type": "function",
                                             "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
        {"role": "tool", "toolCallId": "c", "content": "ok"}],
        "topP": 0.5, "maxTokens": 10, "presencePenalty": 0.5}  # fmt: skip
    got = aigne.completions_request(body, stream=True)
    assert got["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    assert (got["top_p"], got["max_tokens"], got["presence_penalty"]) == (0.5, 10, 0.5)
    assert got["stream"] is True and got["stream_options"] == {"include_usage": True}
    prompt = aigne.completions_request({"model": "a/b", "prompt": "yo"}, stream=False)
    assert prompt["messages"] == [{"role": "user", "content": "yo"}] and "stream" not in prompt
    with pytest.raises(BadRequest):  # an object where AIGNE's flat format sends a string
        aigne.completions_request({"model": "a/b", "messages": [
            {"role": "assistant", "toolCalls": [{"id": "c", "type": "function",
             "function": {"name": "f", "arguments": "{nope"}}]}]}, stream=False)  # fmt: skip
    reply = orjson.loads(aigne.completions_reply(orjson.dumps(COMPLETION)))
    assert reply["role"] == "assistant" and reply["text"] == reply["content"] == "héllo ✓ 日本"
    assert reply["toolCalls"][0]["function"]["arguments"] == '{"location":"東京"}'
    assert "usage" not in reply


def test_error_body() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    err = PaymentRequired("Not enough credits.")
    got = orjson.loads(aigne.error_body(err, link="https://hub/credits", now=at))
    assert got == {"error": {"message": "Not enough credits.", "type": "NOT_ENOUGH",
                             "timestamp": "2026-01-02T03:04:05.678Z",
                             "link": "https://hub/credits"}}  # fmt: skip
    assert orjson.loads(aigne.error_body(BadRequest("x", code="bad"), now=at))["error"] == {
        "message": "x", "type": "bad", "timestamp": "2026-01-02T03:04:05.678Z"}  # fmt: skip


def replay(translator: Any, raw: bytes) -> tuple[list[tuple[str | None, Any]], bytes]:
    """Feed the upstream bytes cut into 7-byte pieces; return the decoded client events."""
    upstream, client = Decoder(), b""
    for i in range(0, len(raw), 7):
        for event in upstream.feed(raw[i : i + 7]):
            client += translator.feed(event)
    for event in upstream.close():
        client += translator.feed(event)
    assert translator.finished
    return [(e.event, orjson.loads(e.data)) for e in Decoder().feed(client) if e.data], client


def test_the_v2_chat_stream() -> None:
    raw = (DATA / "openai/stream_text_tools.sse").read_bytes()
    stream = aigne.ChatStreamFromOpenAI(OpenAIStream(strip_usage=False), model="openai/gpt-4o")
    assert isinstance(stream, aigne.Settles)
    events, client = replay(stream, raw)
    assert b"[DONE]" not in client
    assert [e for e, _ in events] == [None] * len(events)
    assert events[0][1] == {"delta": {"json": {"model": "openai/gpt-4o"}}}
    text = "".join(d["delta"]["text"]["text"] for _, d in events if "text" in d["delta"])
    assert text == "héllo ✓ 日本, checking"
    assert events[-1][1] == {"delta": {"json": {"toolCalls": [
        {"id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
         "function": {"name": "get_weather", "arguments": {"location": "東京"}}},
        {"id": "call_second0000000000000000", "type": "function",
         "function": {"name": "get_time", "arguments": {"tz": "Asia/Tokyo"}}}]}}}  # fmt: skip
    # the usage event is held for end(), after the core settled the call
    stream.settled(stream.usage or Usage(), 1523)
    last = Decoder().feed(stream.end())
    assert [orjson.loads(e.data) for e in last if e.data] == [{"delta": {"json": {"usage": {
        "inputTokens": 82, "outputTokens": 41, "cacheReadInputTokens": 64,
        "aigneHubCredits": 0.001523}}}}]  # fmt: skip


def test_a_json_stream_and_the_error_event() -> None:
    chunks = [{"choices": [{"index": 0, "delta": {"content": part}}]}
              for part in ('{"summ', 'ary":"sunny"}')]  # fmt: skip
    raw = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    stream = aigne.ChatStreamFromOpenAI(OpenAIStream(strip_usage=False), model="m/x",
                                        json_mode=True)  # fmt: skip
    events, _ = replay(stream, raw)
    assert [d for _, d in events] == [
        {"delta": {"json": {"model": "m/x"}}},
        {"delta": {"json": {"json": {"summary": "sunny"}}}},
    ]
    usage = orjson.loads(stream.end()[6:])["delta"]["json"]["usage"]
    assert usage == {"inputTokens": 0, "outputTokens": 0}  # not settled: no credits claimed
    error = aigne.error_event(UpstreamError("The upstream failed."))
    assert error == b'event: error\ndata: {"message":"The upstream failed."}\n\n'


def test_the_flat_completions_stream() -> None:
    raw = (DATA / "openai/stream_text_tools.sse").read_bytes()
    stream = aigne.CompletionsStreamFromOpenAI(OpenAIStream(strip_usage=False))
    events, client = replay(stream, raw)
    assert b"[DONE]" not in client
    deltas = [d["delta"] for _, d in events]
    assert "".join(d["content"] for d in deltas) == "héllo ✓ 日本, checking"
    assert all(d["role"] == "assistant" for d in deltas)
    assert deltas[2]["toolCalls"] == [{"type": "function", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                                       "index": 0, "function": {"name": "get_weather",
                                                                "arguments": ""}}]  # fmt: skip
    assert orjson.loads(stream.end()[6:]) == {
        "usage": {"promptTokens": 82, "completionTokens": 41, "totalTokens": 123}
    }
    assert aigne.completions_error_event(UpstreamError("boom")) == (
        b'data: {"error":{"message":"boom"}}\n\n'
    )
