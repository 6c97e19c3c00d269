"""The fake upstream's Anthropic side: Messages answers, plain and streamed, in Anthropic's shape.

Pure: bench.upstream serves these at POST /v1/messages. A streamed answer carries the same words
as the OpenAI stream's content chunks, one `text_delta` each, so that hubproxy's translation
hands an OpenAI client the same N chunks as the OpenAI pass-through: a role chunk (from
message_start), N - 2 content chunks, a finish chunk (from message_delta), then [DONE]. On the
wire that is N + 3 events, each `event: <type>\\ndata: <json>\\n\\n` and each written alone:

    message_start (usage.input_tokens), content_block_start, N - 2 x content_block_delta
    (text_delta), content_block_stop, message_delta (stop_reason end_turn, usage.output_tokens),
    message_stop
"""

from __future__ import annotations

import os
from typing import Any

import orjson

MODEL = "claude-x"


def input_tokens(body: dict[str, Any]) -> int:
    """A stand-in count, like the OpenAI side's: 8 + a token per 4 characters of the prompt."""
    chars = len(_text(body.get("system")))
    for m in body.get("messages") or ():
        chars += len(_text(m.get("content"))) if isinstance(m, dict) else 0
    return 8 + chars // 4


def message(body: dict[str, Any], text: list[str]) -> dict[str, Any]:
    """A whole (non-streamed) Messages answer."""
    return {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", MODEL),
        "content": [{"type": "text", "text": "".join(text)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _usage(input_tokens(body), len(text)),
    }


def events(body: dict[str, Any], text: list[str]) -> list[bytes]:
    """The stream's events, one text_delta per word of `text`."""
    start = {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", MODEL),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(input_tokens(body), 1),
    }
    block = {"type": "text", "text": ""}
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    return [
        _event("message_start", {"message": start}),
        _event("content_block_start", {"index": 0, "content_block": block}),
        *(_event("content_block_delta", {"index": 0, "delta": _text_delta(word)}) for word in text),
        _event("content_block_stop", {"index": 0}),
        _event("message_delta", {"delta": stop, "usage": {"output_tokens": len(text)}}),
        _event("message_stop", {}),
    ]


def error(kind: str, text: str) -> bytes:
    """An Anthropic error answer's body."""
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": text}})


def _event(kind: str, fields: dict[str, Any]) -> bytes:
    """`event: <kind>` and its data, whose "type" is the kind too (first, as Anthropic sends it)."""
    data = orjson.dumps({"type": kind, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _text_delta(word: str) -> dict[str, str]:
    return {"type": "text_delta", "text": word}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message_id() -> str:
    return "msg_" + os.urandom(12).hex()


def _text(content: Any) -> str:
    """A system prompt or a message's content: a string, or a list of blocks with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (b.get("text") for b in content if isinstance(b, dict))
        return "".join(t for t in texts if isinstance(t, str))
    return ""
