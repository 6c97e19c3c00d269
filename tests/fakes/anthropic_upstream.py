"""A fake Anthropic Messages API (POST /v1/messages) on loopback: captured answers, its faults.

The model name picks the answer (streamed when the request says `"stream": true`):
  claude-text          stream_text.sse / message_text.json (also for any unknown name)
  claude-unicode       stream_unicode_cache.sse: non-ASCII text, prompt-cache usage, comments
  claude-thinking      stream_thinking.sse: a thinking block and no usage at all
  claude-midstream     "Hello", then an in-stream `event: error` (overloaded_error)
  claude-cut           message_start (its provisional output_tokens: 1), then CUT_DELTAS text
                       deltas (CUT_TEXT in all), then the connection ends: no message_delta
  claude-nostop        stream_text.sse up to and with message_delta (the final usage), then
                       the connection ends before message_stop
  claude-overloaded    529 overloaded_error
  claude-ratelimited   429 rate_limit_error, with retry-after: 7
  claude-unauthorized  401 authentication_error (also the answer to a wrong x-api-key)
POST /v1/messages/count_tokens answers {"input_tokens": COUNTED} to any valid request.
A request with tools whose last turn carries no tool_result gets the captured tool_use answer
(stream_tool_use.sse / message_tool_use.json). The next request must send back the matching
tool_use and a tool_result for it; it gets the text answer.

Requests are checked the way Anthropic checks them: the x-api-key, an anthropic-version,
max_tokens, roles alternating from user, image sources, tool_result blocks leading the user
turn right after the tool_use and answering each of its ids. A failed check is answered with
a 400 invalid_request_error that names the problem, so the test that caused it can see it.
Every answer is written in small pieces (see wire.py).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.wire import Recorder, Seen, data

KEY = "sk-ant-api03-UPSTREAM-secret-key-0000000001"
VERSION = "2023-06-01"
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}

# The tool calls the captured answers make: (id, name, input).
STREAM_TOOL = (
    "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
    "get_weather",
    {"location": "San Francisco, CA", "unit": "fahrenheit"},
)
REPLY_TOOL = (
    "toolu_01A09q90qw90lq917835lq9",
    "get_weather",
    {"location": "San Francisco, CA", "unit": "celsius"},
)
COUNTED = 2095  # what count_tokens answers (the reference example's input_tokens)
# The text each captured answer says.
TEXT = {
    "stream_text.sse": "Hello!",
    "stream_unicode_cache.sse": "héllo ✓ 日本",
    "stream_tool_use.sse": "Okay, let's check the weather for San Francisco, CA:",
    "stream_thinking.sse": "The greatest common divisor of 1071 and 462 is **21**.",
    "message_text.json": "Hi! My name is Claude.",
    "message_tool_use.json": "I'll check the current weather in San Francisco for you.",
}
STREAMS = {
    "claude-unicode": "stream_unicode_cache.sse",
    "claude-thinking": "stream_thinking.sse",
}
SSE_HEADERS = {
    "request-id": "req_fake_anthropic_1",
    "anthropic-organization-id": "org-fake-must-not-pass",
    "Cache-Control": "no-cache",
}


def blocks(sse: bytes) -> list[bytes]:
    """The SSE blocks of a captured stream (LF line endings), each with its blank line."""
    return [block + b"\n\n" for block in sse.split(b"\n\n") if block.strip()]


# claude-cut: what the cut stream says before it ends, ASCII and CJK (1 token a character).
CUT_DELTAS = ["Hello there ", "世界", "and more ", "日本語"] * 50
CUT_TEXT = "".join(CUT_DELTAS)


def cut_stream() -> bytes:
    """The text stream's head (message_start, content_block_start, ping), many text deltas,
    and nothing after them."""
    head = blocks(data("anthropic/stream_text.sse"))[:3]
    deltas = [
        b"event: content_block_delta\ndata: "
        + orjson.dumps(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        )
        + b"\n\n"
        for t in CUT_DELTAS
    ]
    return b"".join(head + deltas)


def no_stop_stream() -> bytes:
    """The text stream without its last event, message_stop."""
    return b"".join(blocks(data("anthropic/stream_text.sse"))[:-1])


def midstream_error() -> bytes:
    """The text stream up to its first text delta ("Hello"), then the documented error event."""
    head = blocks(data("anthropic/stream_text.sse"))[:4]
    return b"".join(head) + blocks(data("anthropic/stream_error.sse"))[-1]


@dataclass
class FakeAnthropic(Recorder):
    """State shared with the test: what arrived, what was sent, and the tool results seen."""

    key: str = KEY
    tool_results: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        return app

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        """{"input_tokens": N}, N = COUNTED for any valid request (no max_tokens in it)."""
        seen = await self.seen(request)
        if seen.header("x-api-key") != self.key:
            return await self.error(request, 401, "anthropic/error_authentication.json")
        body = seen.body
        problem = check_request(seen, count=True)
        if problem is None and "max_tokens" in body:
            problem = "max_tokens: Extra inputs are not permitted"
        if problem is not None:
            return await self.invalid(request, problem)
        return await self.send(request, orjson.dumps({"input_tokens": COUNTED}))

    async def messages(self, request: web.Request) -> web.StreamResponse:
        seen = await self.seen(request)
        body = seen.body
        if seen.header("x-api-key") != self.key:
            return await self.error(request, 401, "anthropic/error_authentication.json")
        problem = check_request(seen)
        if problem is None:
            problem = self._check_tool_round(body)
        if problem is not None:
            return await self.invalid(request, problem)
        model = body["model"]
        if model == "claude-unauthorized":
            return await self.error(request, 401, "anthropic/error_authentication.json")
        if model == "claude-overloaded":
            return await self.error(request, 529, "anthropic/error_overloaded.json")
        if model == "claude-ratelimited":
            return await self.error(
                request, 429, "anthropic/error_rate_limit.json", {"retry-after": "7"}
            )
        stream = body.get("stream") is True
        wants_tool = bool(body.get("tools")) and not _has_tool_result(body["messages"][-1])
        if not stream:
            name = "message_tool_use.json" if wants_tool else "message_text.json"
            return await self.send(
                request, data(f"anthropic/{name}"), headers={"request-id": "req_fake_anthropic_1"}
            )
        if wants_tool:
            raw = data("anthropic/stream_tool_use.sse")
        elif model == "claude-midstream":
            raw = midstream_error()
        elif model == "claude-cut":
            raw = cut_stream()
        elif model == "claude-nostop":
            raw = no_stop_stream()
        else:
            raw = data("anthropic/" + STREAMS.get(model, "stream_text.sse"))
        return await self.send(request, raw, content_type="text/event-stream", headers=SSE_HEADERS)

    def _check_tool_round(self, body: dict[str, Any]) -> str | None:
        """The turn after a tool_use answer: the tool_use sent back as it was issued, and a
        tool_result for it leading the next user turn."""
        messages = body["messages"]
        last = messages[-1]
        if not _has_tool_result(last):
            return None
        if len(messages) < 2 or messages[-2]["role"] != "assistant":
            return "tool_result blocks must follow an assistant turn with tool_use blocks"
        issued = [b for b in _content(messages[-2]) if b.get("type") == "tool_use"]
        known = {tool[0]: tool for tool in (STREAM_TOOL, REPLY_TOOL)}
        for block in issued:
            tool = known.get(block.get("id"))
            if tool is None:
                return f"tool_use id {block.get('id')!r} was never issued"
            if (block.get("name"), block.get("input")) != tool[1:]:
                return f"tool_use {tool[0]} came back changed: {block}"
        results = [b for b in _content(last) if b.get("type") == "tool_result"]
        self.tool_results.extend(results)
        if {r.get("tool_use_id") for r in results} != {b["id"] for b in issued}:
            return (
                "tool_use ids were found without tool_result blocks immediately after: "
                f"{[b['id'] for b in issued]} vs {[r.get('tool_use_id') for r in results]}"
            )
        return None

    async def error(
        self, request: web.Request, status: int, name: str, headers: dict[str, str] | None = None
    ) -> web.StreamResponse:
        return await self.send(request, data(name), status=status, headers=headers)

    async def invalid(self, request: web.Request, message: str) -> web.StreamResponse:
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        return await self.send(request, orjson.dumps(body), status=400)


def _content(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _has_tool_result(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "tool_result" for b in _content(message))


def check_request(seen: Seen, *, count: bool = False) -> str | None:
    """What Anthropic would refuse in this request (a count_tokens one if `count`), or None."""
    if seen.header("anthropic-version") != VERSION:
        return f"anthropic-version: header is required (got {seen.header('anthropic-version')})"
    if seen.header("authorization") is not None:
        return "an Authorization header reached Anthropic"
    body = seen.body
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("model"), str) or "/" in body["model"]:
        return f"model: {body.get('model')!r} is not an Anthropic model name"
    if not count and not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        want = "user" if i % 2 == 0 else "assistant"
        if not isinstance(message, dict) or message.get("role") != want:
            return f"messages.{i}.role: roles must alternate, starting with user"
        content = _content(message)
        if not content:
            return f"messages.{i}.content: must not be empty"
        kinds = [b.get("type") if isinstance(b, dict) else None for b in content]
        if "tool_result" in kinds and kinds.index("tool_result") != 0:
            return f"messages.{i}.content: tool_result blocks must come first"
        for j, block in enumerate(content):
            problem = _check_block(block, want)
            if problem:
                return f"messages.{i}.content.{j}: {problem}"
    return None


def _check_block(block: Any, role: str) -> str | None:
    if not isinstance(block, dict):
        return "a content block must be an object"
    kind = block.get("type")
    if kind == "text":
        return None if isinstance(block.get("text"), str) and block["text"] else "empty text"
    if kind == "image" and role == "user":
        return _check_image(block.get("source"))
    if kind == "tool_use" and role == "assistant":
        ok = isinstance(block.get("id"), str) and isinstance(block.get("input"), dict)
        return None if ok else "tool_use needs an id and an object input"
    if kind == "tool_result" and role == "user":
        return None if isinstance(block.get("tool_use_id"), str) else "tool_use_id required"
    if kind in ("document", "thinking", "redacted_thinking", "server_tool_use"):
        return None
    return f"unexpected block type {kind!r} in a {role} turn"


def _check_image(source: Any) -> str | None:
    if not isinstance(source, dict):
        return "image.source: Field required"
    if source.get("type") == "url":
        url = source.get("url")
        return None if isinstance(url, str) and url.startswith("https://") else "bad image url"
    if source.get("type") != "base64":
        return f"image.source.type: {source.get('type')!r}"
    if source.get("media_type") not in IMAGE_TYPES:
        return f"image.source.media_type: {source.get('media_type')!r} is not supported"
    try:
        base64.b64decode(source.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        return "image.source.data: not valid base64"
    return None
