"""gateway/stream.step with OpenAIStream's shortcut for whole plain events (feed_chunk): the
client gets the same bytes, and the call the same usage, text measure and errors, as when
every event is decoded and fed one by one; and the shortcut is taken where it applies."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest

from hubproxy.gateway.stream import step, tail
from hubproxy.providers.openai.provider import OpenAIStream
from hubproxy.providers.sse import Decoder
from tests.fakes.openai_upstream import USAGE, chunks, running_usage
from tests.fakes.wire import data, pieces

ASCII_BODY = {"model": "m"}


def ascii_chunks(with_usage: bool, words: int = 6) -> list[bytes]:
    """The fake upstream's stream with ASCII words (its own last word is not ASCII)."""
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    extra = {"usage": None} if with_usage else {}

    def chunk(delta: dict[str, object], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**head, "choices": [choice], **extra}) + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""}, None)]
    out += [chunk({"content": f" word{i}" * (i % 3 + 1)}, None) for i in range(words)]
    out.append(chunk({}, "stop"))
    if with_usage:
        out.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": USAGE}) + b"\n\n")
    return out


STREAMS: dict[str, list[bytes]] = {
    "ascii": ascii_chunks(with_usage=False),
    "ascii, usage asked": ascii_chunks(with_usage=True),
    "fake upstream, usage asked": chunks({"model": "m"}, with_usage=True),
    "running usage": [running_usage(c, i) for i, c in enumerate(ascii_chunks(False))],
    "captured o4-mini": [data("openai/chat_stream_o4_mini.sse")],
    "captured tools": [data("openai/stream_text_tools.sse")],
    "error mid-stream": [
        *ascii_chunks(with_usage=False)[:4],
        b'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n',
    ],
    "comment between": [
        *ascii_chunks(with_usage=True)[:3],
        b": keep-alive\n\n",
        *ascii_chunks(with_usage=True)[3:],
    ],
    "crlf": [c.replace(b"\n", b"\r\n") for c in ascii_chunks(with_usage=True)],
    "not json": [*ascii_chunks(with_usage=False)[:3], b"data: {this is not json}\n\n"],
}


def cuts(events: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """The same bytes as an upstream's reads could bring them."""
    whole = b"".join(events)
    yield "an event a read", events
    yield "all in one read", [whole]
    yield "two events a read", [b"".join(events[i : i + 2]) for i in range(0, len(events), 2)]
    for size in (1, 7, 64, 333):
        yield f"{size} bytes a read", list(pieces(whole, (size,)))


def relay(
    reads: list[bytes], strip: bool, shortcut: bool
) -> tuple[bytes, OpenAIStream, str | None, int]:
    """What the core's loop does with the reads: the client bytes, the translator, the error
    that ended the stream (its type and message), and how many bytes the shortcut took."""
    translator, decoder = OpenAIStream(strip_usage=strip), Decoder()
    taken = 0
    whole: Callable[[bytes, list[bytes]], int] | None = None
    if shortcut:
        inner = translator.feed_chunk

        def whole(chunk: bytes, out: list[bytes]) -> int:
            nonlocal taken
            n = inner(chunk, out)
            taken += n
            return n

    sent: list[bytes] = []
    for chunk in [*reads, b"data: [DONE]\n\n"]:
        out, error = step(decoder, translator, chunk, whole)
        sent.append(out)
        if error is not None:
            return b"".join(sent), translator, f"{type(error).__name__}: {error}", taken
        if translator.finished:
            break
    else:
        out, error = tail(decoder, translator)
        sent.append(out)
        if error is not None:
            return b"".join(sent), translator, f"{type(error).__name__}: {error}", taken
    return b"".join(sent) + translator.end(), translator, None, taken


@pytest.mark.parametrize("strip", [True, False], ids=["usage cut", "usage asked"])
@pytest.mark.parametrize("name", list(STREAMS))
def test_the_shortcut_changes_nothing_the_client_or_the_call_sees(name: str, strip: bool) -> None:
    for how, reads in cuts(STREAMS[name]):
        expected, slow, slow_error, _ = relay(reads, strip, shortcut=False)
        got, fast, fast_error, _ = relay(reads, strip, shortcut=True)
        assert got == expected, how
        assert fast_error == slow_error, how
        assert (fast.usage, fast.prompt_tokens, fast.finished) == (
            slow.usage,
            slow.prompt_tokens,
            slow.finished,
        ), how
        assert fast.text_chars == slow.text_chars, how


def test_plain_events_take_the_shortcut_and_the_rest_do_not() -> None:
    events = ascii_chunks(with_usage=True, words=10)
    tail_size = len(events[-1]) + len(b"data: [DONE]\n\n")
    for how, reads in cuts(events):
        got, translator, error, taken = relay(reads, strip=True, shortcut=True)
        assert error is None and translator.finished, how
        assert translator.usage is not None and translator.usage.completion_tokens == 4, how
        assert b'"usage":null' not in got and b'"usage"' not in got, how
        if how in ("an event a read", "all in one read", "two events a read"):
            # Every event but the usage chunk and [DONE]: the role chunk and the first word
            # through feed (the skeleton is learnt from them), the rest undecoded.
            assert taken == sum(map(len, events)) + len(b"data: [DONE]\n\n") - tail_size, how


def test_a_read_that_ends_inside_an_event_leaves_the_rest_to_the_decoder() -> None:
    events = ascii_chunks(with_usage=False)
    translator, decoder = OpenAIStream(strip_usage=True), Decoder()
    for chunk in events[:2]:
        step(decoder, translator, chunk, translator.feed_chunk)
    half = len(events[2]) // 2
    out, _ = step(decoder, translator, events[3] + events[2][:half], translator.feed_chunk)
    assert out == events[3] and not decoder.idle
    # The rest of that event and a whole one: the decoder holds a part of an event, so the
    # shortcut must not take the read even though it ends where an event ends.
    taken: list[int] = []

    def spy(chunk: bytes, out: list[bytes]) -> int:
        taken.append(translator.feed_chunk(chunk, out))
        return taken[-1]

    out, _ = step(decoder, translator, events[2][half:] + events[4], spy)
    assert out == events[2] + events[4] and taken == []
