"""The built-in demo provider: a Transport that answers in OpenAI's wire format, in the process.

It echoes the last user message, word by word, with a realistic usage count, so that the whole
request path (SSE decoding, the usage tap, the call log) runs without any provider key.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import time
from collections.abc import Mapping
from typing import Any

import orjson

from hubproxy.errors import BadRequest
from hubproxy.gateway import demo_image
from hubproxy.gateway.transport import Outbound, Response
from hubproxy.providers.base import JSON

# Between two streamed chunks, as a model would pause: the dashboard's playground shows the
# text arriving, not all at once.
PAUSE_S = 0.02


class DemoResponse:
    """The demo's answer, produced in the process, handed out a chunk at a time."""

    __slots__ = ("_chunks", "_sent", "headers", "status")

    def __init__(self, status: int, chunks: list[bytes]) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {}
        self._chunks = chunks
        self._sent = 0

    async def readany(self) -> bytes:
        if not self._chunks:
            return b""
        # Like a socket, let the loop breathe between chunks; like a model, pause a little.
        await asyncio.sleep(PAUSE_S if self._sent else 0)
        self._sent += 1
        return self._chunks.pop(0)

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    def close(self) -> None:
        self._chunks = []


class DemoTransport:
    """A Transport whose upstream is an OpenAI-compatible server living in the process."""

    async def send(self, request: Outbound) -> Response:
        return DemoResponse(*respond(request.url, request.body))


def respond(url: str, raw: bytes) -> tuple[int, list[bytes]]:
    """The status and body chunks an OpenAI server would send for this request."""
    body = orjson.loads(raw)
    if url.endswith("/embeddings"):
        return 200, [orjson.dumps(_embeddings(body))]
    if url.endswith("/images/generations"):
        return 200, [orjson.dumps(_images(body))]
    words, finish = _reply_words(body)
    usage = {
        "prompt_tokens": _prompt_tokens(body.get("messages")),
        "completion_tokens": len(words),
        "total_tokens": 0,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    head = {
        "id": "chatcmpl-demo-" + hashlib.sha256(raw).hexdigest()[:24],
        "object": "chat.completion.chunk" if body.get("stream") else "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "echo"),
        "system_fingerprint": "fp_demo",
    }
    if not body.get("stream"):
        message = {"role": "assistant", "content": "".join(words), "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        whole = {**head, "choices": [choice], "usage": usage}
        return 200, [orjson.dumps(whole)]
    return 200, list(_chunks(head, words, finish, usage, body))


def _chunks(head: JSON, words: list[str], finish: str, usage: JSON, body: JSON) -> list[bytes]:
    opts = body.get("stream_options")
    with_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    extra = {"usage": None} if with_usage else {}
    base = head

    def chunk(delta: JSON, reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return b"data: " + orjson.dumps({**base, "choices": [choice], **extra}) + b"\n\n"

    out = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    out += [chunk({"content": w}, None) for w in words]
    out.append(chunk({}, finish))
    if with_usage:
        out.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _reply_words(body: JSON) -> tuple[list[str], str]:
    messages = body.get("messages") or []
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    said = _text(last.get("content")) if last else ""
    words = ("You said: " + (said or "nothing")).split(" ")
    tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(tokens):
        return tokens[:limit], "length"
    return tokens, "stop"


def _prompt_tokens(messages: Any) -> int:
    """About four characters a token, plus the per-message overhead OpenAI's models have."""
    total = 3
    for m in messages or ():
        total += 4 + math.ceil(len(_text(m.get("content"))) / 4)
    return total


def _embeddings(body: JSON) -> JSON:
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'input' must be a string or a non-empty list.", param="input")
    asked = body.get("dimensions")
    dims = asked if isinstance(asked, int) and 0 < asked <= 4096 else 8
    data, tokens = [], 0
    for i, text in enumerate(inputs):
        text = str(text)
        tokens += max(1, math.ceil(len(text) / 4))
        raw = hashlib.shake_256(text.encode()).digest(4 * dims)
        vec = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dims}I", raw)]
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "echo"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _images(body: JSON) -> JSON:
    """Real PNGs drawn from the prompt: base64, or as data: URLs (fetchable without a key)."""
    prompt, n = str(body.get("prompt", "")), body.get("n", 1)
    count = n if isinstance(n, int) and 0 < n <= 10 else 1
    if body.get("response_format") == "b64_json":
        item = {"b64_json": demo_image.b64_png(prompt)}
    else:
        item = {"url": demo_image.data_url(prompt)}
    return {"created": int(time.time()), "data": [dict(item) for _ in range(count)]}
