"""Helpers for the end-to-end provider tests: provider entries, streamed answers, the call log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson
from openai.types.chat import ChatCompletionChunk

from tests.conftest import Hub
from tests.fakes.wire import data

SDK_TIMEOUT = 10.0  # seconds a client waits for the hub: a hang fails the test, never stalls it
# A 1x1 PNG, for image parts.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/"
    "PchI7wAAAABJRU5ErkJggg=="
)
# What the captured Gemini answers say: response_ja.json whole, stream_text_ja.sse streamed.
_JA = orjson.loads(data("gemini/response_ja.json"))
JA_REPLY: str = _JA["candidates"][0]["content"]["parts"][0]["text"]
JA_STREAM = "今日の東京の天気は曇りで、気温は22度です。\n"


def sdk(hub: Hub) -> openai.AsyncOpenAI:
    """The openai SDK pointed at the hub, with a bounded wait and no retries."""
    return hub.openai(timeout=SDK_TIMEOUT)


def provider(name: str, kind: str, base_url: str, key: str, **extra: Any) -> dict[str, Any]:
    """A [[providers]] entry with short timeouts, so that a fault never hangs a test."""
    return {
        "name": name,
        "type": kind,
        "base_url": base_url,
        "api_key": key,
        "connect_timeout_s": 1.0,
        "idle_timeout_s": 3.0,
        **extra,
    }


@dataclass
class Streamed:
    """An OpenAI SDK stream, read to the end and put back together."""

    chunks: list[ChatCompletionChunk] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    finish: str | None = None
    # index → [id, name, arguments]
    calls: dict[int, list[str]] = field(default_factory=dict)

    @property
    def usage(self) -> Any:
        return next((c.usage for c in self.chunks if c.usage is not None), None)

    def tool_calls(self) -> list[tuple[str, str, Any]]:
        """(id, name, parsed arguments) of each call, in index order."""
        return [(i, n, orjson.loads(a)) for i, n, a in (self.calls[k] for k in sorted(self.calls))]


async def read_stream(stream: AsyncIterator[ChatCompletionChunk]) -> Streamed:
    out = Streamed()
    async for chunk in stream:
        out.chunks.append(chunk)
        for choice in chunk.choices:
            delta = choice.delta
            out.text += delta.content or ""
            out.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for call in delta.tool_calls or ():
                slot = out.calls.setdefault(call.index, ["", "", ""])
                slot[0] = call.id or slot[0]
                if call.function is not None:
                    slot[1] = call.function.name or slot[1]
                    slot[2] += call.function.arguments or ""
            out.finish = choice.finish_reason or out.finish
    return out


async def settled(hub: Hub) -> list[Any]:
    """The call log once nothing is `processing` any more (bounded wait)."""
    await hub.settle()  # PostgreSQL's writer commits on its own task
    await hub.eventually(lambda: all(r["status"] != "processing" for r in hub.calls()))
    return hub.calls()
