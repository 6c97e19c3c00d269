"""Responses API requests translated to chat, and chat completions back to Response objects."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response

from hubproxy.errors import BadRequest, UpstreamError
from hubproxy.providers.openai.responses import (
    chat_request_from_responses,
    input_items,
    response_from_chat,
    response_id,
    with_history,
)

DATA = Path(__file__).resolve().parent.parent / "data"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get current temperature for a given location.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
    "strict": True,
}


def chat(body: dict[str, Any], history: list[Any] | None = None) -> dict[str, Any]:
    return chat_request_from_responses({"model": "claude/x", **body}, history or [])


def test_string_input_and_instructions() -> None:
    out = chat({"input": "Hi", "instructions": "Be brief."})
    assert out == {
        "model": "claude/x",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }
    assert input_items({"input": "Hi"}) == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    ]


def test_message_items_and_parts() -> None:
    out = chat(
        {
            "input": [
                {"role": "developer", "content": "Answer in French."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                        {"type": "input_file", "file_data": "data:application/pdf;base64,QQ==",
                         "filename": "a.pdf"},
                    ],
                },
                {"type": "message", "role": "assistant", "status": "completed", "id": "msg_1",
                 "content": [{"type": "output_text", "text": "Un chat.", "annotations": []}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},  # a hint only: dropped
            ]
        }
    )  # fmt: skip
    assert out["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,QQ==",
                                          "filename": "a.pdf"}},
            ],
        },
        {"role": "assistant", "content": "Un chat."},
    ]  # fmt: skip


def test_options() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    out = chat(
        {
            "input": "x",
            "max_output_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "parallel_tool_calls": False,
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {
                "format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True}
            },
            "reasoning": {"effort": "low", "summary": "auto"},
            "metadata": {"k": "v"},
            "store": False,
            "stream": True,
            "user": "u1",
        }
    )
    fn = {k: v for k, v in WEATHER.items() if k != "type"}
    assert out == {
        "model": "claude/x",
        "messages": [{"role": "user", "content": "x"}],
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "user": "u1",
        "tools": [{"type": "function", "function": fn}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": schema, "strict": True},
        },
        "reasoning_effort": "low",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert chat({"input": "x", "tool_choice": "required"})["tool_choice"] == "required"
    assert chat({"input": "x", "text": {"format": {"type": "json_object"}}})["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in chat({"input": "x", "text": {"format": {"type": "text"}}})


def test_function_call_round_trip_with_history() -> None:
    """Turn 1 asked a question and got a call; turn 2 sends the call's output."""
    completion = (DATA / "openai/completion_tool_call.json").read_bytes()
    first = {"model": "claude/x", "input": "Weather in Tokyo?", "tools": [WEATHER]}
    rid = response_id()
    response = orjson.loads(
        response_from_chat(completion, response_id=rid, model="x", request=first)
    )
    history = [*input_items(first), *response["output"]]
    call = response["output"][1]
    second = {
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "22°C"}],
        "previous_response_id": rid,
        "tools": [WEATHER],
    }
    out = chat(second, history)
    assert out["messages"] == [
        {"role": "user", "content": "Weather in Tokyo?"},
        {
            "role": "assistant",
            "content": "héllo ✓ 日本, checking",
            "tool_calls": [
                {
                    "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"東京"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "content": "22°C"},
    ]
    # The same turn for an upstream that speaks Responses: the hub's id is not sent.
    passed = with_history({"model": "gpt-4o", **second}, history)
    assert "previous_response_id" not in passed
    assert passed["input"] == [*history, *second["input"]]


def test_parallel_calls_join_one_assistant_message() -> None:
    calls = [
        {"type": "function_call", "call_id": f"c{i}", "name": "f", "arguments": "{}"}
        for i in range(2)
    ]
    outputs = [{"type": "function_call_output", "call_id": f"c{i}", "output": [
        {"type": "input_text", "text": f"r{i}"}]} for i in range(2)]  # fmt: skip
    thanks = {"role": "user", "content": "thanks"}
    out = chat({"input": [{"role": "user", "content": "q"}, *calls, *outputs, thanks]})
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    assert [c["id"] for c in out["messages"][1]["tool_calls"]] == ["c0", "c1"]
    assert out["messages"][2]["content"] == "r0"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": 3}, "input"),
        ({"input": []}, "input"),
        ({"input": [1]}, "input[0]"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0].type"),
        ({"input": [{"type": 7}]}, "input[0].type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
         "input[0].content[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
         "input[0].content[0].file_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
         "input[0].content[0].text"),
        ({"input": [{"role": "assistant", "content": [{"type": "input_image"}]}]},
         "input[0].content[0].type"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
         "input[0].call_id"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
         "input[0].arguments"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
         "input[0].output"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [WEATHER, {"type": "file_search", "vector_store_ids": []}]}, "tools[1].type"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tools": "x"}, "tools"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
        ({"text": "json"}, "text.format"),
        ({"reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"max_output_tokens": -1}, "max_output_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"instructions": ["x"]}, "instructions"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"store": "yes"}, "store"),
        ({"model": ""}, "model"),
    ],
)  # fmt: skip
def test_malformed_input_is_a_bad_request_naming_the_field(
    change: dict[str, Any], param: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        chat({"input": "x", **change})
    assert caught.value.status == 400 and caught.value.param == param


JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["input", "tools", "tool_choice", "text", "reasoning", "instructions", "type", "role",
     "content", "call_id", "output", "name", "arguments", "format", "image_url", "metadata"]
)  # fmt: skip
ITEM = st.dictionaries(KEYS, JSONS | st.sampled_from(["message", "function_call", "user"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.dictionaries(KEYS, JSONS | st.lists(ITEM, max_size=3), max_size=5))
def test_arbitrary_input_only_raises_bad_requests(body: dict[str, Any]) -> None:
    with contextlib.suppress(BadRequest):  # any other exception fails the test
        chat_request_from_responses({"model": "m", **body}, [])


# --- answers ------------------------------------------------------------------------------


def test_response_from_chat() -> None:
    completion = (DATA / "openai/completion_tool_call.json").read_bytes()
    request = {
        "model": "claude/x",
        "input": "Weather?",
        "instructions": "Be brief.",
        "tools": [WEATHER],
        "metadata": {"k": "v"},
        "previous_response_id": "resp_prev",
        "max_output_tokens": 100,
    }
    rid = response_id()
    body = response_from_chat(completion, response_id=rid, model="claude/x", request=request)
    response = Response.model_validate_json(body)
    assert response.id == rid and rid.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.incomplete_details is None
    assert response.output_text == "héllo ✓ 日本, checking"
    message, call = response.output
    assert message.type == "message" and message.id.startswith("msg_")
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    assert call.type == "function_call" and call.id and call.id.startswith("fc_")
    assert (call.call_id, call.name, call.arguments, call.status) == (
        "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", '{"location":"東京"}', "completed",
    )  # fmt: skip
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (82, 17)
    assert response.usage.total_tokens == 99
    assert response.usage.input_tokens_details.cached_tokens == 64
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    raw = orjson.loads(body)
    for key in ("instructions", "tools", "metadata", "previous_response_id", "max_output_tokens"):
        assert raw[key] == request[key]
    assert (raw["store"], raw["tool_choice"], raw["parallel_tool_calls"]) == (True, "auto", True)
    assert raw["text"] == {"format": {"type": "text"}} and raw["created_at"] == 1741570283


def test_a_completion_cut_by_the_limit_is_incomplete() -> None:
    completion = orjson.loads((DATA / "openai/completion_tool_call.json").read_bytes())
    completion["choices"][0]["finish_reason"] = "length"
    del completion["choices"][0]["message"]["tool_calls"]
    completion["usage"]["completion_tokens_details"]["reasoning_tokens"] = 5
    body = response_from_chat(
        orjson.dumps(completion), response_id="resp_1", model="m", request={"input": "x"}
    )
    response = Response.model_validate_json(body)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 5


def test_an_answer_without_usage_has_zero_counts_for_the_estimate() -> None:
    completion = {"id": "c", "created": 3, "choices": [{"message": {"content": "hi"}}]}
    body = response_from_chat(
        orjson.dumps(completion), response_id="resp_1", model="m", request={"input": "x"}
    )
    usage = Response.model_validate_json(body).usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (0, 0)


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"choices": []}', b'{"choices": [{}]}'])
def test_an_answer_without_a_message_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        response_from_chat(body, response_id="resp_1", model="m", request={})
