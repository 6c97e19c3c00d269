"""One step of a relayed stream: an upstream chunk → SSE events → translator → client bytes.

Pure and synchronous, so that the core's stream loop stays one generator with no coroutine
per chunk. Nothing is buffered but a partial event (in the Decoder). What a chunk produced
before an error still goes out, followed by the error.
"""

from __future__ import annotations

from collections.abc import Callable

from hubproxy.errors import UpstreamError
from hubproxy.providers.base import StreamTranslator
from hubproxy.providers.sse import Decoder, Event

# What RawChunks gives when the upstream closed: a raw stream's terminal event.
RAW_END = Event("end", None, b"")


def step(
    decoder: Decoder,
    translator: StreamTranslator,
    chunk: bytes,
    whole_events: Callable[[bytes, list[bytes]], int] | None = None,
) -> tuple[bytes, Exception | None]:
    """The client bytes for one upstream chunk, and the error that cut it short, if any.

    `whole_events` is the translator's shortcut for whole events that need no decoding
    (OpenAIStream.feed_chunk): offered the chunk first when no event is half read, it takes
    what it can of its start; the decoder and `feed` take the rest."""
    feed = translator.feed
    out: list[bytes] = []
    try:
        if whole_events is not None and decoder.idle:
            taken = whole_events(chunk, out)
            if taken == len(chunk):
                return out[0] if len(out) == 1 else b"".join(out), None
            chunk = chunk[taken:]
        for event in decoder.feed(chunk):
            out.append(feed(event))
    except Exception as exc:
        return b"".join(out), exc
    return b"".join(out), None


def tail(decoder: Decoder, translator: StreamTranslator) -> tuple[bytes, Exception | None]:
    """The client bytes for what the decoder still holds once the upstream closed, and an
    error if the stream ended before its terminal event."""
    feed = translator.feed
    out: list[bytes] = []
    try:
        for event in decoder.close():
            out.append(feed(event))
    except Exception as exc:
        return b"".join(out), exc
    if not translator.finished:
        return b"".join(out), UpstreamError(
            "The upstream provider ended the stream before it was complete.",
            code="upstream_incomplete",
        )
    return b"".join(out), None


class RawChunks(Decoder):
    """A "decoder" for an answer that is not SSE (speech's audio bytes): each chunk is one
    event whose data and raw bytes are the chunk, and the upstream's close is RAW_END, so
    that a raw translator passes the bytes through and knows the stream is complete."""

    __slots__ = ()

    def feed(self, chunk: bytes) -> list[Event]:
        return [Event(None, chunk, chunk)]

    def close(self) -> list[Event]:
        return [RAW_END]
