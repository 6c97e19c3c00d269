"""The OpenAI fake's Responses API (POST /v1/responses) and legacy completions (POST
/v1/completions), in OpenAI's wire format.

/v1/responses answers with the captured o4-mini stream (tests/data/openai/
responses_stream_o4_mini.sse: reasoning, then the text TEXT, usage USAGE), each answer under
a new id; a whole answer is that stream's final Response object. A request with function
tools whose input does not end in a function_call_output gets a call of `get_weather` (CALL)
instead, written to the documented event shapes. The model `gated` stops after the first
text delta until `release` is set. The input must be OpenAI's: no previous_response_id (the
hub's ids mean nothing here), and a function_call_output must answer a call in the input.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.wire import data

CAPTURED = data("openai/responses_stream_o4_mini.sse")
CAPTURED_ID = b"resp_68b5ebab461881969ed94149372c2a530698ecbf1b9f2704"
TEXT = "The sum of the first 5 positive integers is 15."
USAGE = {
    "input_tokens": 17,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 122,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 139,
}
CALL = ("call_fake_weather_1", "get_weather", '{"city":"Paris"}')
CALL_USAGE = {**USAGE, "input_tokens": 40, "output_tokens": 9, "total_tokens": 49,
              "output_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip
_ids = itertools.count(1)


def events(raw: bytes) -> list[bytes]:
    return [block + b"\n\n" for block in raw.split(b"\n\n") if block.strip()]


def event(obj: dict[str, Any]) -> bytes:
    return b"event: " + obj["type"].encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def new_id() -> bytes:
    """A fresh response id, as long as the captured one (the bytes stay the same size)."""
    return b"resp_" + f"{next(_ids):048x}".encode()


def final_response(stream: bytes) -> dict[str, Any]:
    """The Response object a stream's last event carries."""
    last = events(stream)[-1]
    obj: dict[str, Any] = orjson.loads(last.split(b"data: ", 1)[1])["response"]
    return obj


def call_stream(rid: str) -> bytes:
    """A function call answer, event by event as OpenAI documents them."""
    shell = final_response(CAPTURED)
    shell.update(id=rid, status="in_progress", output=[], usage=None)
    item = {"id": "fc_fake_1", "type": "function_call", "status": "in_progress",
            "arguments": "", "call_id": CALL[0], "name": CALL[1]}  # fmt: skip
    done = {**item, "status": "completed", "arguments": CALL[2]}
    where = {"item_id": item["id"], "output_index": 0}
    out = [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.function_call_arguments.delta", **where, "delta": CALL[2][:9]},
        {"type": "response.function_call_arguments.delta", **where, "delta": CALL[2][9:]},
        {"type": "response.function_call_arguments.done", **where, "arguments": CALL[2]},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed",
         "response": {**shell, "status": "completed", "output": [done], "usage": CALL_USAGE}},
    ]  # fmt: skip
    return b"".join(event({**obj, "sequence_number": i}) for i, obj in enumerate(out))


def problem(body: Any) -> str | None:
    """What OpenAI would refuse in a Responses request from the hub."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "model is required"
    if "previous_response_id" in body:
        return f"Previous response with id '{body['previous_response_id']}' not found."
    items = body.get("input")
    if isinstance(items, str):
        return None
    if not isinstance(items, list):
        return "input must be a string or a list"
    calls = {i.get("call_id") for i in items if i.get("type") == "function_call"}
    for item in items:
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            return f"No tool call found for function call output with call_id {item['call_id']}."
    return None


def wants_call(body: dict[str, Any]) -> bool:
    items = body.get("input")
    last = items[-1] if isinstance(items, list) and items else {}
    functions = [t for t in body.get("tools") or () if t.get("type") == "function"]
    return bool(functions) and last.get("type") != "function_call_output"


async def responses(fake: Any, request: web.Request) -> web.StreamResponse:
    from tests.fakes.openai_upstream import Seen, error

    body = await request.json()
    fake.requests.append(Seen(request.path, dict(request.headers), body))
    said = problem(body)
    if said is not None:
        err = {"message": said, "type": "invalid_request_error", "param": None, "code": None}
        return web.json_response({"error": err}, status=400)
    model = body["model"]
    if model.startswith("e") and model[1:].isdigit():
        return error(int(model[1:]))
    rid = new_id()
    stream = call_stream(rid.decode()) if wants_call(body) else CAPTURED.replace(CAPTURED_ID, rid)
    if not body.get("stream"):
        return web.json_response(final_response(stream))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    try:
        for i, raw in enumerate(events(stream)):
            if model == "gated" and b"output_text.delta" in raw and not fake.first_sent.is_set():
                await resp.write(raw)
                fake.first_sent.set()
                await fake.release.wait()
                continue
            await resp.write(raw)
            if i % 5 == 0:
                await asyncio.sleep(0)
    except (asyncio.CancelledError, ConnectionResetError):
        fake.disconnected.set()
        raise
    return resp


# -- legacy completions -------------------------------------------------------------------

COMPLETION_WORDS = ["\n\nThis", " is", " a", " test", "."]
COMPLETION_USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
_HEAD = {"id": "cmpl-fake", "object": "text_completion", "created": 1700000000}


async def completions(fake: Any, request: web.Request) -> web.StreamResponse:
    from tests.fakes.openai_upstream import Seen

    body = await request.json()
    fake.requests.append(Seen(request.path, dict(request.headers), body))
    head = {**_HEAD, "model": body["model"]}
    if not body.get("stream"):
        choice = {"text": "".join(COMPLETION_WORDS), "index": 0, "logprobs": None,
                  "finish_reason": "stop"}  # fmt: skip
        return web.json_response({**head, "choices": [choice], "usage": COMPLETION_USAGE})
    with_usage = (body.get("stream_options") or {}).get("include_usage") is True
    extra = {"usage": None} if with_usage else {}
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i, word in enumerate(COMPLETION_WORDS):
        last = i == len(COMPLETION_WORDS) - 1
        choice = {"text": word, "index": 0, "logprobs": None,
                  "finish_reason": "stop" if last else None}  # fmt: skip
        await resp.write(b"data: " + orjson.dumps({**head, "choices": [choice], **extra}) + b"\n\n")
    if with_usage:
        usage = {**head, "choices": [], "usage": COMPLETION_USAGE}
        await resp.write(b"data: " + orjson.dumps(usage) + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp
