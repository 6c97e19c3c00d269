"""Anthropic's SSE stream: translated into OpenAI chunks, or passed through, usage tapped. Pure.

Usage convention (see base.Usage): Anthropic's `input_tokens` excludes the prompt-cache
tokens, so prompt_tokens = input + cache_creation + cache_read input tokens. The counts in
`message_delta` are cumulative and replace the ones from `message_start`, whose
`output_tokens` (1) is a placeholder: the usage is final only once `message_delta` brought
its own. Until then `usage` stays None, so a stream cut before it is billed at an estimate of
what was relayed, and `prompt_tokens` holds the input count `message_start` gave.
"""

from __future__ import annotations

from typing import Any

from hubproxy.billing.tokens import units
from hubproxy.errors import HubError, UpstreamError, from_upstream
from hubproxy.providers.base import JSON, Usage
from hubproxy.providers.openai.chat import ChunkWriter, tool_call_json
from hubproxy.providers.openai.provider import loads
from hubproxy.providers.sse import Event

# Anthropic's documented error types and the HTTP status each stands for.
STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

FINISH_BY_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH_BY_STOP.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def error_of(err: Any, status: int | None = None) -> HubError:
    """The HubError for Anthropic's `error` object ({"type", "message"})."""
    kind = err.get("type") if isinstance(err, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    if status is None:
        status = STATUS_BY_TYPE.get(kind, 500) if isinstance(kind, str) else 500
    return from_upstream(
        status,
        message if isinstance(message, str) else "",
        type=kind if isinstance(kind, str) else None,
    )


class UsageTap:
    """The four counts Anthropic reports, kept as the stream updates them."""

    __slots__ = ("cache_creation", "cache_read", "input", "output", "seen")

    def __init__(self) -> None:
        self.input = self.output = self.cache_creation = self.cache_read = 0
        self.seen = False

    def update(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        self.seen = True
        for attr, key in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_creation", "cache_creation_input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
        ):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, attr, value)

    def prompt(self) -> int | None:
        """The input counted so far, cache reads and writes included; None if none was."""
        return (self.input + self.cache_creation + self.cache_read) or None

    def final(self, usage: Any) -> Usage | None:
        """The usage once `message_delta`'s own (cumulative) output count is in: final.
        None if it brought none, since the only output count is then message_start's
        placeholder."""
        if not isinstance(usage, dict) or not isinstance(usage.get("output_tokens"), int):
            return None
        self.update(usage)
        return self.usage()

    def usage(self) -> Usage | None:
        if not self.seen:
            return None
        return Usage(
            prompt_tokens=self.input + self.cache_creation + self.cache_read,
            completion_tokens=self.output,
            cached_tokens=self.cache_read,
            cache_creation_tokens=self.cache_creation,
        )


def usage_of(obj: Any) -> Usage | None:
    tap = UsageTap()
    tap.update(obj)
    return tap.usage()


def _event(event: Event) -> tuple[str, JSON] | None:
    """(type, object) of a data event; None for a comment or keep-alive."""
    if event.data is None:
        return None
    obj = loads(event.data, "stream data")
    if not isinstance(obj, dict):
        raise UpstreamError("The upstream sent a stream event that is not an object.")
    kind = obj.get("type")
    return (kind if isinstance(kind, str) else event.event or ""), obj


class AnthropicStream:
    """Anthropic events → OpenAI chat.completion.chunk events."""

    __slots__ = (
        "_finish",
        "_include_usage",
        "_tap",
        "_tools",
        "_writer",
        "created",
        "finished",
        "prompt_tokens",
        "text_chars",
        "usage",
    )

    def __init__(self, include_usage: bool, created: int | None = None) -> None:
        self._include_usage = include_usage
        self.created = created
        self._writer: ChunkWriter | None = None
        self._tap = UsageTap()
        self._tools: dict[int, int] = {}  # content block index → OpenAI tool call index
        self._finish: str | None = None
        self.usage: Usage | None = None
        self.prompt_tokens: int | None = None
        self.finished = False
        self.text_chars = 0

    def _chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        if self._writer is None:  # no message_start: still answer in a well-formed shape
            self._writer = ChunkWriter("chatcmpl-anthropic", "", self.created)
        return self._writer.chunk(delta, finish)

    def feed(self, event: Event) -> bytes:
        parsed = _event(event)
        if parsed is None:
            return b""
        kind, obj = parsed
        if kind == "message_start":
            message = obj.get("message")
            message = message if isinstance(message, dict) else {}
            mid, model = message.get("id"), message.get("model")
            self._writer = ChunkWriter(
                mid if isinstance(mid, str) else "chatcmpl-anthropic",
                model if isinstance(model, str) else "",
                self.created,
            )
            self._tap.update(message.get("usage"))
            self.prompt_tokens = self._tap.prompt()  # the output count here is a placeholder
            return self._chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            return self._block_start(obj)
        if kind == "content_block_delta":
            return self._block_delta(obj)
        if kind == "message_delta":
            delta = obj.get("delta")
            self.usage = self._tap.final(obj.get("usage")) or self.usage
            self.prompt_tokens = self._tap.prompt()
            if not isinstance(delta, dict) or "stop_reason" not in delta:
                return b""
            self._finish = finish_reason(delta.get("stop_reason"))
            return self._chunk({}, self._finish)
        if kind == "message_stop":
            self.finished = True
            if self._include_usage and self.usage is not None and self._writer is not None:
                return self._writer.usage_chunk(self.usage)
            return b""
        if kind == "error":
            raise error_of(obj.get("error"))
        return b""  # ping, content_block_stop, and event types added after this was written

    def _block_start(self, obj: JSON) -> bytes:
        block = obj.get("content_block")
        index = obj.get("index")
        if not isinstance(block, dict):
            return b""
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            self.text_chars += units(block["text"])
            return self._chunk({"content": block["text"]})
        if kind == "thinking" and isinstance(block.get("thinking"), str) and block["thinking"]:
            self.text_chars += units(block["thinking"])
            return self._chunk({"reasoning_content": block["thinking"]})
        if kind == "tool_use" and isinstance(index, int):
            call = len(self._tools)
            self._tools[index] = call
            cid, name = block.get("id"), block.get("name")
            return self._chunk(
                {
                    "tool_calls": [
                        tool_call_json(
                            call,
                            cid if isinstance(cid, str) else f"toolu_{call}",
                            name if isinstance(name, str) else "",
                            "",
                        )
                    ]
                }
            )
        return b""  # server tools, their results, redacted thinking: nothing for an OpenAI client

    def _block_delta(self, obj: JSON) -> bytes:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return b""
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
            self.text_chars += units(delta["text"])
            return self._chunk({"content": delta["text"]})
        if (
            kind == "thinking_delta"
            and isinstance(delta.get("thinking"), str)
            and delta["thinking"]
        ):
            self.text_chars += units(delta["thinking"])
            return self._chunk({"reasoning_content": delta["thinking"]})
        if kind == "input_json_delta":
            index = obj.get("index")
            call = self._tools.get(index) if isinstance(index, int) else None
            partial = delta.get("partial_json")
            if call is None or not isinstance(partial, str) or not partial:
                return b""
            self.text_chars += units(partial)
            return self._chunk(
                {"tool_calls": [{"index": call, "function": {"arguments": partial}}]}
            )
        return b""  # signature_delta, citations_delta, ...

    def end(self) -> bytes:
        return b"data: [DONE]\n\n"


class AnthropicPassthroughStream:
    """An Anthropic-format client talking to an Anthropic upstream: every event passes through
    untouched; the usage is tapped; `message_stop` is held back for `end()`. An in-stream
    `error` event is raised, and the pipeline sends it on as one Anthropic error event."""

    __slots__ = ("_end", "_tap", "finished", "prompt_tokens", "text_chars", "usage")

    def __init__(self) -> None:
        self._tap = UsageTap()
        self._end = b""
        self.usage: Usage | None = None
        self.prompt_tokens: int | None = None
        self.finished = False
        self.text_chars = 0

    def feed(self, event: Event) -> bytes:
        parsed = _event(event)
        if parsed is None:
            return event.raw
        kind, obj = parsed
        if kind == "message_start" and isinstance(obj.get("message"), dict):
            self._tap.update(obj["message"].get("usage"))
            self.prompt_tokens = self._tap.prompt()  # the output count here is a placeholder
        elif kind == "message_delta":
            self.usage = self._tap.final(obj.get("usage")) or self.usage
            self.prompt_tokens = self._tap.prompt()
        elif kind == "content_block_delta" and isinstance(obj.get("delta"), dict):
            delta = obj["delta"]
            for key in ("text", "thinking", "partial_json"):
                if isinstance(delta.get(key), str):
                    self.text_chars += units(delta[key])
        elif kind == "error":
            raise error_of(obj.get("error"))
        elif kind == "message_stop":
            self.finished = True
            self._end = event.raw
            return b""
        return event.raw

    def end(self) -> bytes:
        return self._end
