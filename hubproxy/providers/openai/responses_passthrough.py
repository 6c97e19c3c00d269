"""OpenAI's own Responses stream, passed through to the client byte for byte, with a usage tap.

For a /v1/responses call to an OpenAI-type upstream: every event goes on untouched; the
terminal event (`response.completed` or `response.incomplete`) carries the Response object,
whose usage is tapped and which is kept for storage, and is held back for `end()`. The one
change: a conversation continued from a stored response (the gateway sent its history, not
the id) gets that `previous_response_id` back in the events that carry the Response. An `error`
event or `response.failed` from the upstream is raised as a HubError; `error_event` then sends
the upstream's own event on.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from hubproxy.billing.tokens import units
from hubproxy.errors import HubError, UpstreamError, from_upstream
from hubproxy.providers.base import JSON, Usage
from hubproxy.providers.openai.provider import loads
from hubproxy.providers.sse import Event, encode

TERMINAL = frozenset({"response.completed", "response.incomplete"})
FAILURE = frozenset({"response.failed", "error"})
# The events that carry the Response object itself.
SHELLS = frozenset({"response.created", "response.in_progress", "response.queued"})
_DELTAS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})
_SEQUENCE = re.compile(rb'"sequence_number"\s*:\s*(\d+)')
_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_.]+)"')


def responses_usage(obj: Any) -> Usage | None:
    """Usage from a Responses `usage` object (input_tokens include the cached ones)."""
    if not isinstance(obj, dict):
        return None
    details = obj.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    return Usage(
        prompt_tokens=int(obj.get("input_tokens") or 0),
        completion_tokens=int(obj.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        cache_creation_tokens=int(details.get("cache_write_tokens") or 0),
    )


def usage_of_response(body: bytes) -> Usage | None:
    """The usage of a whole (non-streamed) Response object."""
    obj = loads(body, "JSON")
    if not isinstance(obj, dict) or obj.get("object") != "response":
        raise UpstreamError("The upstream answer is not a response.", code="bad_upstream_response")
    return responses_usage(obj.get("usage"))


def continued(body: bytes, previous_response_id: str | None) -> bytes:
    """A whole Response with the conversation's previous_response_id (see the module)."""
    if previous_response_id is None:
        return body
    obj = loads(body, "JSON")
    if not isinstance(obj, dict):
        return body
    obj["previous_response_id"] = previous_response_id
    return orjson.dumps(obj)


def _failure(obj: JSON) -> HubError:
    """The HubError for an upstream `error` event or a failed response."""
    err: JSON = obj
    if obj.get("type") == "response.failed":
        response = obj.get("response")
        inner = response.get("error") if isinstance(response, dict) else None
        err = inner if isinstance(inner, dict) else {}
    code = err.get("code")
    status = 429 if code == "rate_limit_exceeded" else 500
    param = err.get("param")
    return from_upstream(
        status,
        str(err.get("message") or ""),
        code=str(code) if code is not None else None,
        param=param if isinstance(param, str) else None,
    )


class ResponsesPassthrough:
    """Responses events from an OpenAI-type upstream, untouched, with the usage tapped."""

    __slots__ = (
        "_end", "_failure", "_previous", "_seq", "finished", "prompt_tokens", "response",
        "text_chars", "usage",
    )  # fmt: skip

    def __init__(self, previous_response_id: str | None = None) -> None:
        self._previous = previous_response_id
        self._end = b""
        self._failure = b""  # the upstream's own failure event, sent on by error_event
        self._seq = -1  # the last sequence_number seen
        self.response: JSON | None = None  # the final Response object, for storage
        self.usage: Usage | None = None
        self.prompt_tokens: int | None = None  # the usage comes whole, at the end
        self.finished = False
        self.text_chars = 0

    def feed(self, event: Event) -> bytes:
        data = event.data
        if data is None:
            return event.raw  # a comment or keep-alive
        seq = _SEQUENCE.search(data)
        if seq is not None:
            self._seq = max(self._seq, int(seq.group(1)))
        kind = event.event
        if kind is None:  # a server that names no events: the type is in the data
            found = _TYPE.search(data)
            kind = found.group(1).decode() if found else None
        if kind in _DELTAS:
            obj = loads(data, "stream data")
            delta = obj.get("delta") if isinstance(obj, dict) else None
            self.text_chars += units(delta) if isinstance(delta, str) else 0
        elif kind in TERMINAL or kind in FAILURE:
            return self._terminal(kind, data, event)
        elif kind in SHELLS and self._previous is not None:
            return self._continued(loads(data, "stream data"), event)[1]
        return event.raw

    def _continued(self, obj: Any, event: Event) -> tuple[Any, bytes]:
        """The event with the conversation's previous_response_id in its Response."""
        response = obj.get("response") if isinstance(obj, dict) else None
        if self._previous is None or not isinstance(response, dict):
            return obj, event.raw
        response["previous_response_id"] = self._previous
        return obj, encode(orjson.dumps(obj), event.event)

    def _terminal(self, kind: str, data: bytes, event: Event) -> bytes:
        obj, raw = self._continued(loads(data, "stream data"), event)
        if not isinstance(obj, dict):
            raise UpstreamError("The upstream sent a stream event that is not an object.")
        response = obj.get("response")
        if isinstance(response, dict):
            self.response = response
            usage = responses_usage(response.get("usage"))
            self.usage = usage if usage is not None else self.usage
        if kind in FAILURE:
            self._failure = raw
            raise _failure(obj)
        self.finished = True
        self._end = raw
        return b""

    def end(self) -> bytes:
        return self._end

    def error_event(self, err: HubError) -> bytes:
        """The upstream's own failure event when it sent one; else an `error` event that
        continues its sequence numbers."""
        if self._failure:
            return self._failure
        self._seq += 1
        obj = {
            "type": "error",
            "sequence_number": self._seq,
            "code": err.code,
            "message": err.message,
            "param": err.param,
        }
        return encode(orjson.dumps(obj), "error")
