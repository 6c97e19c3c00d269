"""AIGNE v2 streams from the OpenAI chunks any provider's translator writes. Pure.

`ChatStreamFromOpenAI` (/api/v2/chat) wraps a translator as the Anthropic adapter does and
writes AIGNE's events: `data: {"delta":{"text":{"text":..}}}` (or `thoughts`), and
`{"delta":{"json":{..}}}` for the model, the tool calls (arguments as objects), a JSON answer
and, last, the usage. The stream ends by closing: there is no [DONE]. The usage event
carries `aigneHubCredits`, the call's debit, which is known only once the call is recorded:
the core calls `settled(usage, credits)` after recording and before `end()`, which writes
that event with the recorded usage (the provider's, or the estimate) and debit.

`CompletionsStreamFromOpenAI` (/api/v2/chat/completions) writes
`data: {"delta":{"role":"assistant","content":..,"toolCalls":[..]}}` and, at the end,
`data: {"usage":{"promptTokens","completionTokens","totalTokens"}}`.

A mid-stream error is `error_event(err)`: `event: error` with `{"message"}` on /api/v2/chat,
`data: {"error":{"message"}}` on /api/v2/chat/completions.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import orjson

from hubproxy.errors import HubError
from hubproxy.providers.aigne.reply import aigne_usage, parse_arguments
from hubproxy.providers.base import JSON, StreamTranslator, Usage
from hubproxy.providers.openai.reframe import Reframed
from hubproxy.providers.sse import encode


@runtime_checkable
class Settles(Protocol):
    """A translator whose last bytes need the call's recorded usage and debit (micro-credits):
    the core's optional `settled` hook."""

    def settled(self, usage: Usage, credits: int) -> None: ...


def data(obj: JSON) -> bytes:
    return encode(orjson.dumps(obj))


def error_event(err: HubError) -> bytes:
    """/api/v2/chat's mid-stream error, which AIGNE's SDK throws with its message."""
    return encode(orjson.dumps({"message": err.message}), "error")


def completions_error_event(err: HubError) -> bytes:
    return data({"error": {"message": err.message}})


class _FromOpenAI(Reframed):
    """Reads the inner translator's OpenAI chunks; subclasses write them in their shape."""

    def _close(self) -> bytes:
        return b""


def _delta(obj: JSON) -> JSON:
    choices = obj.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    delta = choice.get("delta") if isinstance(choice, dict) else None
    return delta if isinstance(delta, dict) else {}


class ChatStreamFromOpenAI(_FromOpenAI):
    """/api/v2/chat's events. `model` is the one the client asked for (provider/model)."""

    def __init__(
        self,
        inner: StreamTranslator,
        *,
        model: str,
        json_mode: bool = False,
        credit_prefix: str | None = None,
        call_id: str | None = None,
    ) -> None:
        super().__init__(inner)
        self._model = model
        self._json_mode = json_mode
        self._credit_prefix = credit_prefix
        self._call_id = call_id
        self._started = False
        self._json_text: list[str] = []
        self._calls: dict[int, JSON] = {}  # by index: id, name, argument text
        self._debit: int | None = None

    def settled(self, usage: Usage, credits: int) -> None:
        self.usage = usage
        self._debit = credits

    def end(self) -> bytes:
        usage = aigne_usage(self.usage, debit=self._debit, credit_prefix=self._credit_prefix,
                            call_id=self._call_id)  # fmt: skip
        return data({"delta": {"json": {"usage": usage}}})

    def _chunk(self, obj: JSON) -> bytes:
        out = b""
        if not self._started:
            self._started = True
            out += data({"delta": {"json": {"model": self._model}}})
        delta = _delta(obj)
        thoughts, text = delta.get("reasoning_content"), delta.get("content")
        if isinstance(thoughts, str) and thoughts:
            out += data({"delta": {"text": {"thoughts": thoughts}}})
        if isinstance(text, str) and text:
            if self._json_mode:
                self._json_text.append(text)
            else:
                out += data({"delta": {"text": {"text": text}}})
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool_delta(call)
        return out

    def _tool_delta(self, call: JSON) -> None:
        given = call.get("index")
        index = given if isinstance(given, int) else len(self._calls)
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(fn, dict)
        slot = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if isinstance(call.get("id"), str) and call["id"]:
            slot["id"] = call["id"]
        if isinstance(fn.get("name"), str) and fn["name"]:
            slot["name"] = fn["name"]
        if isinstance(fn.get("arguments"), str):
            slot["arguments"] += fn["arguments"]

    def _close(self) -> bytes:
        out = b"" if self._started else data({"delta": {"json": {"model": self._model}}})
        self._started = True
        if self._calls:
            calls = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": parse_arguments(c["arguments"])}}
                for _, c in sorted(self._calls.items())
            ]  # fmt: skip
            out += data({"delta": {"json": {"toolCalls": calls}}})
        if self._json_mode and self._json_text:
            out += data({"delta": {"json": {"json": parse_arguments("".join(self._json_text))}}})
        return out


class CompletionsStreamFromOpenAI(_FromOpenAI):
    """/api/v2/chat/completions' flat events."""

    def _chunk(self, obj: JSON) -> bytes:
        delta = _delta(obj)
        text, calls = delta.get("content"), delta.get("tool_calls")
        if not (isinstance(text, str) and text) and not calls:
            return b""
        out: JSON = {"role": "assistant", "content": text if isinstance(text, str) else ""}
        out["toolCalls"] = [_flat_call(c) for c in calls if isinstance(c, dict)] if calls else []
        return data({"delta": out})

    def end(self) -> bytes:
        u = self.usage or Usage()
        return data({"usage": {"promptTokens": u.prompt_tokens,
                               "completionTokens": u.completion_tokens,
                               "totalTokens": u.total_tokens}})  # fmt: skip


def _flat_call(call: JSON) -> JSON:
    fn: Any = call.get("function") if isinstance(call.get("function"), dict) else {}
    name, arguments = fn.get("name") or "", fn.get("arguments") or ""
    out: JSON = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call.get("id"):
        out["id"] = call["id"]
    if isinstance(call.get("index"), int):
        out["index"] = call["index"]
    return out
