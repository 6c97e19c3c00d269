"""What a face hands the core: the call context, the face's shape, and the parts it gets back.

The core never sees an HTTP object. A face (api/openai.py, api/native.py, ...) parses its
request into a CallContext, asks the Gateway for the answer, and renders the parts it yields:
a Whole (a non-streamed answer), or a Head, then body bytes, then an End (a stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubproxy.errors import HubError
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.record import Call
from hubproxy.providers import sse
from hubproxy.providers.base import StreamTranslator
from hubproxy.store.ops import Op


def _same(translator: StreamTranslator) -> StreamTranslator:
    return translator


def _unchanged(body: bytes) -> bytes:
    return body


def _openai_error_event(err: HubError) -> bytes:
    return sse.encode(err.to_json())


@dataclass(frozen=True, slots=True)
class Face:
    """How the core's answers are shaped for one kind of client: OpenAI's by default. A face
    whose clients speak another format wraps the stream translator, reshapes whole replies,
    and renders an error that happens after the first streamed byte."""

    name: str = "openai"
    stream: Callable[[StreamTranslator], StreamTranslator] = _same
    reply: Callable[[bytes], bytes] = _unchanged
    error_event: Callable[[HubError], bytes] = _openai_error_event
    # Writes that commit with a successful call's record (a stored Response, say): given the
    # call, its stream translator (or None) and its whole answer (or None).
    ops: Callable[[Call, StreamTranslator | None, bytes | None], Sequence[Op]] | None = None


OPENAI = Face()


class CallSlot:
    """Where the core leaves the call it started, for the face's access line to read."""

    __slots__ = ("call",)

    def __init__(self) -> None:
        self.call: Call | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """One request as the core sees it."""

    request_id: str
    principal: Principal
    body: dict[str, Any]  # the parsed request, in the face's own shape; never mutated
    face: Face = OPENAI
    trace_id: str | None = None
    forward: Mapping[str, str] = field(default_factory=dict)  # sent upstream: trace context
    # Client headers a pass-through may forward (Anthropic's anthropic-beta opt-ins).
    client_headers: Mapping[str, str] = field(default_factory=dict)
    slot: CallSlot = field(default_factory=CallSlot)
    app_id: str | None = None  # the calling app's DID, recorded with the call (AIGNE's faces)
    app_user: str | None = None  # a v1 app's end user, recorded with the call
    # "credits": held and debited; "subscription": an AIGNE v1 app's subscription pays, so the
    # call is priced for its record (credits) but nothing is held or debited.
    billing: str = "credits"


@dataclass(slots=True)  # built per request: a frozen init costs ~1 µs more
class Whole:
    """A non-streamed answer, released only once its call is recorded."""

    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)  # built per request: a frozen init costs ~1 µs more
class Head:
    """The start of a streamed answer: what goes in the response headers."""

    headers: dict[str, str]


@dataclass(slots=True)  # built per request: a frozen init costs ~1 µs more
class End:
    """The last bytes of a stream, released only once its call is recorded."""

    data: bytes


Part = Whole | Head | End | bytes
