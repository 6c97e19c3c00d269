"""The Provider protocol: what a wire-format module implements. Pure translation, no I/O.

The hub's own format is OpenAI's chat completions. A provider turns an OpenAI-shaped request
body into its upstream request, and the upstream's answers (whole, or as SSE events) back into
OpenAI-shaped client bytes, reading the usage on the way. Credentials are not its business
beyond naming the header they travel in: upstream.py picks the key and fails over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hubproxy.errors import HubError
from hubproxy.providers.sse import Event

JSON = dict[str, Any]


@dataclass(slots=True)
class Usage:
    """Token counts as the provider reported them. `prompt_tokens` counts every input token,
    cached ones included; `cached_tokens` and `cache_creation_tokens` say how many of those
    were read from or written to the provider's prompt cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class MediaUsage:
    """What an image or audio call consumed, besides tokens.

    `variant` is the images' "size/quality" (it picks a per-image price). Audio is billed per
    second when the upstream reported a duration (`milliseconds`) and the rate has a
    per-second price; otherwise per MB (1,000,000 bytes) of the upload (`bytes`)."""

    images: int = 0
    variant: str | None = None
    chars: int = 0
    milliseconds: int | None = None
    bytes: int = 0


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What to POST upstream. `headers` are the format's own (e.g. anthropic-version), never
    credentials."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole (non-streamed) answer: the client's bytes and the usage read from it (for
    images and audio, also what the media consumed: images made, seconds transcribed)."""

    body: bytes
    usage: Usage | None
    media: MediaUsage | None = None


class StreamTranslator(Protocol):
    """Per-call state that turns upstream SSE events into client bytes.

    `feed` returns the bytes to send for one event (b"" for none) and raises HubError when the
    upstream reports an error inside the stream. When the upstream sends its terminal event,
    `finished` becomes True and the terminal bytes are *not* returned by `feed`: the pipeline
    takes them from `end()` after the call is recorded, so a client never sees a stream end
    that the log does not have.

    Two hooks are optional, for translators whose client format needs them: `error_event(err)
    -> bytes` renders an error after the first byte in the stream's own terms (its sequence
    numbers, say) instead of the face's generic event; `settled(usage, credits)` is told the
    call's recorded usage and debit (micro-credits) after the record commits and before
    `end()`, for formats whose last event reports them.
    """

    # The provider's own FINAL count, once the stream has carried it; None until then, even
    # if the stream gave provisional or running counts (Anthropic's message_start, Gemini's
    # usageMetadata on every event), so that a stream cut short is billed at an estimate.
    usage: Usage | None
    # The prompt's token count as the stream gave it before its final usage (Anthropic's
    # message_start, any event of Gemini's, a running OpenAI-compatible usage), else None: an
    # estimate of a cut stream needs only its output then.
    prompt_tokens: int | None
    finished: bool
    # The generated text passed on, in billing.tokens units (an ASCII character 1, any other
    # 4; tokens.from_chars turns them into tokens): the basis of an estimate if usage is None.
    text_chars: int

    def feed(self, event: Event) -> bytes: ...

    def end(self) -> bytes: ...


class Provider(Protocol):
    """One upstream wire format, configured for one provider entry."""

    def auth_headers(self, api_key: str) -> dict[str, str]: ...

    def chat_request(self, body: JSON, model: str, stream: bool) -> UpstreamRequest:
        """`body` is the client's OpenAI request (do not mutate it); `model` the upstream's
        own model name."""
        ...

    def chat_reply(self, body: bytes) -> Reply: ...

    def chat_stream(self, body: JSON) -> StreamTranslator:
        """A translator for one streamed call; `body` is the client's request, which says e.g.
        whether it asked for a usage chunk."""
        ...

    def embeddings_request(self, body: JSON, model: str) -> UpstreamRequest: ...

    def embeddings_reply(self, body: bytes) -> Reply: ...

    def error(self, status: int, body: bytes, *, path: str = "") -> HubError:
        """The HubError for an upstream error answer (status >= 400); `path` is the URL path
        the request went to, named when the upstream did not know it (a wrong base_url)."""
        ...
