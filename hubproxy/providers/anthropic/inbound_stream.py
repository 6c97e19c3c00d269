"""The /v1/messages stream: OpenAI chunks from any provider, rewritten as Anthropic events.

anthropic_inbound.py turns the client's request into OpenAI's format; the provider's own
translator then writes OpenAI chunks, which `MessagesStreamFromOpenAI` reads back and writes
as Anthropic's events, keeping the content-block bookkeeping Anthropic clients rely on.
"""

from __future__ import annotations

from typing import Any

import orjson

from hubproxy.providers.base import JSON, StreamTranslator, Usage
from hubproxy.providers.openai.reframe import Reframed
from hubproxy.providers.sse import encode

STOP_BY_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def anthropic_usage(usage: Usage | None) -> JSON:
    """Anthropic counts fresh input apart from the prompt-cache reads and writes."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(fresh, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def message_id(openai_id: Any) -> str:
    """An Anthropic-looking message id (msg_...) made from the upstream's own id."""
    if not isinstance(openai_id, str) or not openai_id:
        return "msg_hub"
    return openai_id if openai_id.startswith("msg_") else f"msg_{openai_id}"


def sse_event(obj: JSON) -> bytes:
    return encode(orjson.dumps(obj), obj["type"])


class MessagesStreamFromOpenAI(Reframed):
    """Wraps a translator that writes OpenAI chunks and rewrites them as Anthropic events.

    usage, prompt_tokens, finished and text_chars follow the inner translator. When it
    finishes, `feed` closes the open content block and sends `message_delta` (stop reason and
    usage); `end()` gives `message_stop`.
    """

    __slots__ = (
        "_block",
        "_index",
        "_model",
        "_started",
        "_stop",
    )

    def __init__(self, inner: StreamTranslator, model: str | None = None) -> None:
        super().__init__(inner)
        self._model = model
        self._started = False
        self._block: tuple[str, int] | None = None  # ("text"|"thinking"|"tool", tool index)
        self._index = -1  # the Anthropic content block index
        self._stop: str | None = None

    def end(self) -> bytes:
        return sse_event({"type": "message_stop"})

    def _start(self, obj: JSON) -> bytes:
        self._started = True
        model = self._model or obj.get("model")
        message: JSON = {
            "id": message_id(obj.get("id")),
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) else "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # The input as far as the upstream told it yet; the output comes in message_delta.
            "usage": {"input_tokens": self._inner.prompt_tokens or 0, "output_tokens": 0},
        }
        return sse_event({"type": "message_start", "message": message})

    def _open(self, kind: str, tool: int, block: JSON) -> bytes:
        out = self._stop_block()
        self._index += 1
        self._block = (kind, tool)
        return out + sse_event(
            {"type": "content_block_start", "index": self._index, "content_block": block}
        )

    def _stop_block(self) -> bytes:
        if self._block is None:
            return b""
        self._block = None
        return sse_event({"type": "content_block_stop", "index": self._index})

    def _delta(self, delta: JSON) -> bytes:
        return sse_event({"type": "content_block_delta", "index": self._index, "delta": delta})

    def _chunk(self, obj: JSON) -> bytes:
        out = b"" if self._started else self._start(obj)
        choices = obj.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return out  # e.g. the usage-only chunk: its numbers are read from the inner usage
        delta = choice.get("delta")
        if isinstance(delta, dict):
            out += self._delta_of(delta)
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._stop = STOP_BY_FINISH.get(finish, "end_turn")
        return out

    def _delta_of(self, delta: JSON) -> bytes:
        out = b""
        reasoning, text = delta.get("reasoning_content"), delta.get("content")
        if isinstance(reasoning, str) and reasoning:
            if self._block is None or self._block[0] != "thinking":
                block: JSON = {"type": "thinking", "thinking": "", "signature": ""}
                out += self._open("thinking", -1, block)
            out += self._delta({"type": "thinking_delta", "thinking": reasoning})
        if isinstance(text, str) and text:
            if self._block is None or self._block[0] != "text":
                out += self._open("text", -1, {"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": text})
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if not isinstance(call, dict):
                continue
            index = call.get("index")
            index = index if isinstance(index, int) else 0
            fn = call.get("function")
            fn = fn if isinstance(fn, dict) else {}
            if self._block != ("tool", index) or call.get("id"):
                tool: JSON = {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{index}",
                    "name": fn.get("name") or "",
                    "input": {},
                }
                out += self._open("tool", index, tool)
            arguments = fn.get("arguments")
            if isinstance(arguments, str) and arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _close(self) -> bytes:
        out = b"" if self._started else self._start({})
        out += self._stop_block()
        delta = {"stop_reason": self._stop or "end_turn", "stop_sequence": None}
        return out + sse_event(
            {"type": "message_delta", "delta": delta, "usage": anthropic_usage(self.usage)}
        )
