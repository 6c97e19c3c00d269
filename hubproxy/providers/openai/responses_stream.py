"""The /v1/responses stream from any chat provider: OpenAI chunks rewritten as Responses events.

The provider's own translator writes OpenAI chat chunks; `ResponsesStreamFromChat` reads them
back and writes the Responses API's semantic events, keeping the bookkeeping its clients rely
on: one `sequence_number` counting every event, an `output_index` per output item, and each
item opened (`output_item.added`) and closed (`output_item.done`) around its deltas.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from hubproxy.errors import HubError, UpstreamError
from hubproxy.providers.base import JSON, StreamTranslator, Usage
from hubproxy.providers.openai.reframe import Reframed
from hubproxy.providers.openai.responses_object import (
    call_item,
    call_item_id,
    failed,
    finish,
    message_item,
    message_item_id,
    reasoning_tokens_of,
    shell,
    text_part,
)
from hubproxy.providers.sse import encode


class _Item:
    """An output item being streamed: a message (its text) or a function call."""

    __slots__ = ("call_id", "index", "item_id", "kind", "name", "status", "text")

    def __init__(self, kind: str, index: int, item_id: str, call_id: str = "", name: str = ""):
        self.kind = kind
        self.index = index  # its output_index
        self.item_id = item_id
        self.call_id = call_id
        self.name = name
        self.text = ""  # the message's text, or the call's arguments
        self.status = "in_progress"

    def json(self) -> JSON:
        if self.kind == "message":
            parts = [text_part(self.text)] if self.text or self.status != "in_progress" else []
            return message_item(self.item_id, parts, self.status)
        return call_item(self.item_id, self.call_id, self.name, self.text, self.status)


class ResponsesStreamFromChat(Reframed):
    """Wraps a translator that writes OpenAI chunks and writes Responses events.

    usage, finished and text_chars follow the inner translator. When it finishes, `feed`
    closes the open output item; `end()` gives the held terminal event (`response.completed`,
    or `response.incomplete` when the output was cut by the token limit), written with the
    usage as it stands then: `settled` puts the recorded usage there (an estimate, when the
    upstream gave none), so what the client sees is what the log says. `error_event` renders
    a failure as `response.failed`. `final()` is the finished Response object, for storage;
    `response` the object as it stands.
    """

    __slots__ = (
        "_call_ids",
        "_finish",
        "_id",
        "_items",
        "_open",
        "_reasoning",
        "_response",
        "_seq",
    )

    def __init__(
        self,
        inner: StreamTranslator,
        *,
        response_id: str,
        model: str,
        request: JSON,
        created_at: int | None = None,
    ) -> None:
        super().__init__(inner)
        self._id = response_id
        created = int(time.time()) if created_at is None else created_at
        self._response = shell(request, resp_id=response_id, model=model, created_at=created)
        self._seq = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._call_ids: dict[int, _Item] = {}  # chat tool call index → its item
        self._finish: str | None = None
        self._reasoning = 0
        self.usage: Usage | None = None
        self.prompt_tokens: int | None = None
        self.finished = False
        self.text_chars = 0

    @property
    def response(self) -> JSON:
        """The Response object as it stands: final once the stream has ended."""
        return self._response

    def settled(self, usage: Usage, credits_micro: int) -> None:
        """The call's recorded usage (the upstream's, or the gateway's estimate of a stream
        that gave none): what response.completed reports."""
        self.usage = usage

    def final(self) -> JSON:
        """The finished Response object: its output items, status and usage."""
        finish(self._response, self._finish, self.usage, self._reasoning)
        self._response["output"] = [item.json() for item in self._items]
        return self._response

    def end(self) -> bytes:
        """The terminal event, held back until the call is recorded."""
        response = self.final()
        kind = "response.incomplete" if response["status"] == "incomplete" else None
        return self._event(kind or "response.completed", response=response)

    def error_event(self, err: HubError) -> bytes:
        """A failure after the stream has begun, as `response.failed` (with what was produced
        so far); the events that open the stream come first if none was sent yet."""
        out = self._start()
        if self._open is not None:
            self._open.status = "incomplete"
        self._response["output"] = [item.json() for item in self._items]
        failed(self._response, err)
        return out + self._event("response.failed", response=self._response)

    # -- writing events ------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> bytes:
        obj = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return encode(orjson.dumps(obj), kind)

    def _start(self) -> bytes:
        if self._seq:
            return b""
        return self._event("response.created", response=self._response) + self._event(
            "response.in_progress", response=self._response
        )

    def _begin(self, item: _Item) -> bytes:
        out = self._end_item()
        self._items.append(item)
        self._open = item
        out += self._event("response.output_item.added", output_index=item.index, item=item.json())
        if item.kind == "message":
            out += self._event(
                "response.content_part.added",
                item_id=item.item_id,
                output_index=item.index,
                content_index=0,
                part=text_part(""),
            )
        return out

    def _end_item(self, status: str = "completed") -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        item.status = status
        where = {"item_id": item.item_id, "output_index": item.index}
        out = b""
        if item.kind == "message":
            out += self._event(
                "response.output_text.done", **where, content_index=0, text=item.text, logprobs=[]
            )
            out += self._event(
                "response.content_part.done", **where, content_index=0, part=text_part(item.text)
            )
        else:
            out += self._event(
                "response.function_call_arguments.done", **where, arguments=item.text
            )
        return out + self._event(
            "response.output_item.done", output_index=item.index, item=item.json()
        )

    # -- reading chunks ------------------------------------------------------------------

    def _chunk(self, obj: JSON) -> bytes:
        out = self._start()
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._reasoning = reasoning_tokens_of(usage)
        choices = obj.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return out  # e.g. the usage-only chunk: its numbers are read from the inner usage
        delta = choice.get("delta")
        if isinstance(delta, dict):
            out += self._delta(delta)
        finish_reason = choice.get("finish_reason")
        if isinstance(finish_reason, str):
            self._finish = finish_reason
        return out

    def _delta(self, delta: JSON) -> bytes:
        out = b""
        text = delta.get("content")
        if isinstance(text, str) and text:
            item = self._open
            if item is None or item.kind != "message":
                item = _Item("message", len(self._items), message_item_id(self._id))
                if any(i.kind == "message" for i in self._items):  # a second text run
                    item.item_id = f"{item.item_id}_{item.index}"
                out += self._begin(item)
            item.text += text
            out += self._event(
                "response.output_text.delta",
                item_id=item.item_id,
                output_index=item.index,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out += self._call(call)
        return out

    def _call(self, call: JSON) -> bytes:
        index = call.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else 0
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        out = b""
        item = self._call_ids.get(index)
        if item is None:
            item = _Item(
                "function_call",
                len(self._items),
                call_item_id(self._id, index),
                call_id=str(call.get("id") or f"call_{index}"),
                name=str(fn.get("name") or ""),
            )
            self._call_ids[index] = item
            out += self._begin(item)
        elif item is not self._open:
            # Its output_item.done was sent: more arguments now would contradict it.
            raise UpstreamError(
                "The upstream interleaved the arguments of two tool calls.",
                code="bad_upstream_response",
            )
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=item.item_id,
                output_index=item.index,
                delta=arguments,
            )
        return out

    def _close(self) -> bytes:
        status = "incomplete" if self._finish in ("length", "content_filter") else "completed"
        return self._start() + self._end_item(status)
