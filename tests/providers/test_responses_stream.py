"""Responses API streams: chat chunks rewritten as Responses events, checked event by event
against a captured OpenAI stream; and an OpenAI upstream's own stream passed through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_stream_event import ResponseStreamEvent as RawEvent

from hubproxy.errors import HubError, RateLimited, UpstreamError
from hubproxy.providers.base import Usage
from hubproxy.providers.gemini.provider import GeminiStream
from hubproxy.providers.openai.provider import OpenAIStream
from hubproxy.providers.openai.responses import (
    ResponsesPassthrough,
    ResponsesStreamFromChat,
    usage_of_response,
)
from hubproxy.providers.sse import Decoder
from tests.providers.test_anthropic import data_events, replay, same_for_every_cut

DATA = Path(__file__).resolve().parent.parent / "data"
EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
RESP_ID = "resp_0123456789abcdef0123456789abcdef0123456789abcdef"
REQUEST: dict[str, Any] = {"model": "o4-mini", "input": "Sum the first 5 positive integers."}


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def translator(inner: Any, request: dict[str, Any] | None = None) -> ResponsesStreamFromChat:
    return ResponsesStreamFromChat(
        inner, response_id=RESP_ID, model="o4-mini", request=request or REQUEST, created_at=7
    )


def translate(raw: bytes, inner: Any, request: dict[str, Any] | None = None) -> Any:
    """The events the translator writes for `raw` (the same for every cut of it), checked
    with the openai SDK, and the translator."""
    out, wrapper = same_for_every_cut(raw, lambda: translator(inner(), request))
    body, end = out.split(b"\x00")
    events = data_events(body + end)
    for name, obj in events:
        assert name == obj["type"]  # the SSE event name is the data's type
        EVENT.validate_python(obj)
    assert [obj["sequence_number"] for _, obj in events] == list(range(len(events)))
    assert data_events(end) == events[-1:]  # end() is exactly the terminal event
    return [obj for _, obj in events], wrapper


def accumulate(events: list[Any]) -> Response:
    """The final Response as the openai SDK's own stream accumulator builds it."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[], text_format=omit)
    final = None
    for obj in events:
        for out in state.handle_event(pydantic.TypeAdapter(RawEvent).validate_python(obj)):
            if out.type in ("response.completed", "response.incomplete", "response.failed"):
                final = out.response
    assert final is not None
    return final


SHAPE_KEYS = ("type", "output_index", "content_index")
UNCOMPARED = {"obfuscation", "logprobs"}  # OpenAI's per-delta extras; logprobs only some


def without_reasoning(captured: list[Any]) -> list[Any]:
    """The captured events for the message alone: its reasoning item (output 0) removed, the
    sequence renumbered and the output indexes moved down by one, as a stream without
    reasoning would have them."""
    out = []
    for obj in captured:
        if obj.get("output_index") == 0 or "reasoning" in obj["type"]:
            continue
        obj = dict(obj, sequence_number=len(out))
        if "output_index" in obj:
            obj["output_index"] -= 1
        out.append(obj)
    return out


def test_translated_stream_matches_the_captured_openai_stream() -> None:
    captured = without_reasoning(
        [obj for _, obj in data_events(data("openai/responses_stream_o4_mini.sse"))]
    )
    ours, wrapper = translate(
        data("openai/chat_stream_o4_mini.sse"), lambda: OpenAIStream(strip_usage=False)
    )
    assert len(ours) == len(captured)
    for mine, theirs in zip(ours, captured, strict=True):
        assert [mine.get(k) for k in (*SHAPE_KEYS, "sequence_number")] == [
            theirs.get(k) for k in (*SHAPE_KEYS, "sequence_number")
        ]
        assert set(mine) - UNCOMPARED == set(theirs) - UNCOMPARED, mine["type"]
        for key in ("delta", "text"):
            assert mine.get(key) == theirs.get(key)
        if "part" in mine:
            assert mine["part"] == theirs["part"]
        if "item" in mine:
            assert {k: v for k, v in mine["item"].items() if k != "id"} == {
                k: v for k, v in theirs["item"].items() if k != "id"
            }
            assert mine["item"]["id"].startswith("msg_")
        if "response" in mine:
            assert set(mine["response"]) <= set(theirs["response"])
            assert mine["response"]["status"] == theirs["response"]["status"]
    # every event of an item names the item that output_item.added opened
    item_ids = {obj["item_id"] for obj in ours if "item_id" in obj}
    assert item_ids == {ours[2]["item"]["id"]}
    final = ours[-1]["response"]
    usage = captured[-1]["response"]["usage"]  # 17 in, 122 out, 64 reasoning
    # The capture predates cache_write_tokens, which the SDK's types now require.
    usage["input_tokens_details"]["cache_write_tokens"] = 0
    assert final["usage"] == usage
    assert final["output"][0]["content"] == captured[-1]["response"]["output"][1]["content"]
    assert wrapper.response == final and wrapper.usage == Usage(17, 122)
    assert accumulate(ours).output_text == "The sum of the first 5 positive integers is 15."


def test_text_and_tool_calls() -> None:
    events, wrapper = translate(
        data("openai/stream_text_tools.sse"), lambda: OpenAIStream(strip_usage=True)
    )
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed"
    added = [
        (e["output_index"], e["item"]["type"])
        for e in events
        if e["type"].endswith("added") and "item" in e
    ]
    done = [
        (e["output_index"], e["item"]["type"])
        for e in events
        if e["type"] == "response.output_item.done"
    ]
    assert added == done == [(0, "message"), (1, "function_call"), (2, "function_call")]
    final = accumulate(events)
    assert final.output_text == "héllo ✓ 日本, checking"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments, c.status) for c in calls] == [
        ("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", '{"location":"東京"}', "completed"),
        ("call_second0000000000000000", "get_time", '{"tz":"Asia/Tokyo"}', "completed"),
    ]
    assert calls[0].id and calls[0].id.startswith("fc_") and calls[0].id != calls[1].id
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (82, 41)
    assert final.usage.input_tokens_details.cached_tokens == 64
    assert final.status == "completed" and wrapper.usage == Usage(82, 41, 64)
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert [d["output_index"] for d in deltas] == [1, 1, 2]
    alone = OpenAIStream(strip_usage=True)  # text_chars is the inner translator's count
    replay(alone, [data("openai/stream_text_tools.sse")])
    assert wrapper.text_chars == alone.text_chars > 0


def test_a_gemini_function_call() -> None:
    events, _ = translate(
        data("gemini/stream_function_call.sse"), lambda: GeminiStream(include_usage=True, created=0)
    )
    final = accumulate(events)
    call = final.output[-1]
    assert call.type == "function_call" and call.name == "getWeather"
    assert orjson.loads(call.arguments) == {"location": "Tokyo"}


def chunks(*deltas: dict[str, Any], finish: str = "stop", usage: bool = True) -> bytes:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    out.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        u = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        out.append({**head, "choices": [], "usage": u})
    return b"".join(b"data: " + orjson.dumps(o) + b"\n\n" for o in out) + b"data: [DONE]\n\n"


def test_cut_by_the_token_limit_is_incomplete() -> None:
    raw = chunks({"content": "Once upon"}, finish="length")
    events, wrapper = translate(raw, lambda: OpenAIStream(strip_usage=True))
    assert events[-1]["type"] == "response.incomplete"
    final = events[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"
    assert accumulate(events).output_text == "Once upon"
    assert wrapper.response["status"] == "incomplete"


def test_an_estimate_set_before_end_is_what_the_client_sees() -> None:
    raw = chunks({"content": "hi"}, usage=False)
    wrapper = translator(OpenAIStream(strip_usage=True))
    body = b"".join(wrapper.feed(e) for e in Decoder().feed(raw))
    assert wrapper.finished and wrapper.usage is None and b"response.completed" not in body
    wrapper.usage = Usage(prompt_tokens=9, completion_tokens=1)  # the pipeline's estimate
    end = data_events(wrapper.end())
    assert end[0][1]["response"]["usage"]["input_tokens"] == 9
    assert wrapper.response["usage"]["total_tokens"] == 10


def test_an_error_mid_stream_is_response_failed() -> None:
    first = Decoder().feed(chunks({"content": "partial"}, usage=False))[:1]  # the text only
    error = Decoder().feed(b'data: {"error":{"message":"boom","type":"server_error"}}\n\n')
    wrapper = translator(OpenAIStream(strip_usage=True))
    sent = b""
    with pytest.raises(HubError) as caught:
        for event in first + error:
            sent += wrapper.feed(event)
    failed = wrapper.error_event(caught.value)
    events = [obj for _, obj in data_events(sent + failed)]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.failed"
    response = Response.model_validate(events[-1]["response"])
    assert response.status == "failed" and response.error is not None
    assert response.error.code == "server_error"
    assert response.output[0].type == "message" and response.output[0].status == "incomplete"
    assert wrapper.response["status"] == "failed"
    for _, obj in data_events(failed):
        EVENT.validate_python(obj)


def test_an_error_before_any_event_still_opens_the_stream() -> None:
    wrapper = translator(OpenAIStream(strip_usage=True))
    events = [obj for _, obj in data_events(wrapper.error_event(RateLimited("slow down")))]
    assert [(e["type"], e["sequence_number"]) for e in events] == [
        ("response.created", 0),
        ("response.in_progress", 1),
        ("response.failed", 2),
    ]
    assert events[-1]["response"]["error"] == {
        "code": "rate_limit_exceeded",
        "message": "slow down",
    }


def test_interleaved_tool_arguments_are_an_upstream_error() -> None:
    raw = chunks(
        {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]},
        {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
    )
    wrapper = translator(OpenAIStream(strip_usage=True))
    with pytest.raises(UpstreamError):
        for event in Decoder().feed(raw):
            wrapper.feed(event)


# --- pass-through -----------------------------------------------------------------------


def test_passthrough_is_byte_for_byte_with_usage() -> None:
    raw = data("openai/responses_stream_o4_mini.sse")
    out, tap = same_for_every_cut(raw, ResponsesPassthrough)
    assert out.replace(b"\x00", b"") == raw
    assert out.split(b"\x00")[1].startswith(b"event: response.completed\n")  # held for end()
    assert isinstance(tap, ResponsesPassthrough)
    assert tap.usage == Usage(prompt_tokens=17, completion_tokens=122, cached_tokens=0)
    assert tap.response is not None
    assert tap.response["id"] == "resp_68b5ebab461881969ed94149372c2a530698ecbf1b9f2704"
    assert tap.text_chars == len("The sum of the first 5 positive integers is 15.")


def test_passthrough_of_a_failure_sends_the_upstreams_own_event() -> None:
    raw = data("openai/responses_stream_o4_mini.sse")
    head = raw[: raw.index(b"event: response.output_item.added")]
    failed = (
        b'event: response.failed\ndata: {"type":"response.failed","sequence_number":2,'
        b'"response":{"id":"resp_x","object":"response","status":"failed","error":'
        b'{"code":"rate_limit_exceeded","message":"Slow down"},"output":[],"usage":null}}\n\n'
    )
    tap = ResponsesPassthrough()
    sent = b""
    with pytest.raises(HubError) as caught:
        for event in Decoder().feed(head + failed):
            sent += tap.feed(event)
    assert sent == head and caught.value.status == 429
    assert tap.error_event(caught.value) == failed


def test_passthrough_error_event_continues_the_sequence() -> None:
    raw = data("openai/responses_stream_o4_mini.sse")
    head = raw[: raw.index(b"event: response.output_item.added")]
    tap = ResponsesPassthrough()
    for event in Decoder().feed(head):
        tap.feed(event)
    ((name, obj),) = data_events(tap.error_event(UpstreamError("gone")))
    assert name == "error" and obj["sequence_number"] == 2 and obj["message"] == "gone"
    EVENT.validate_python(obj)


def test_usage_of_a_whole_response() -> None:
    events = data_events(data("openai/responses_stream_o4_mini.sse"))
    body = orjson.dumps(events[-1][1]["response"])
    assert usage_of_response(body) == Usage(prompt_tokens=17, completion_tokens=122)
    with pytest.raises(UpstreamError):
        usage_of_response(b'{"object":"chat.completion"}')
    with pytest.raises(UpstreamError):
        usage_of_response(b"not json")
