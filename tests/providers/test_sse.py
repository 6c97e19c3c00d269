"""The SSE decoder: any cut of a stream decodes to the same events, raw bytes included."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hubproxy.providers.sse import Decoder, Event, encode

ENDINGS = (b"\n", b"\r\n", b"\r")
# Values: anything but line breaks, with multi-byte UTF-8 so cuts fall inside characters.
VALUE = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12
).map(str.encode) | st.sampled_from(
    [b"", b"h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac", b"[DONE]"]
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[tuple[str | None, bytes | None]]]:
    """A well-formed stream and the (event, data) each of its blocks must decode to."""
    eol = draw(st.sampled_from(ENDINGS))
    blocks = draw(
        st.lists(
            st.tuples(
                st.none() | st.sampled_from(["message_start", "ping", "日本"]),  # event name
                st.lists(VALUE, max_size=3),  # data lines
                st.booleans(),  # a comment line
                st.booleans(),  # an id: line, which a proxy ignores
                st.sampled_from([b"data: ", b"data:"]),
            ),
            min_size=1,
            max_size=6,
        )
    )
    if eol == b"\r":
        # At end of input, a lone CR may be the first half of a CRLF, so the decoder holds the
        # last block until close(), which delivers it only if it has data: end on one that has.
        last = blocks[-1]
        blocks[-1] = (last[0], last[1] or [b"x"], last[2], last[3], last[4])
    out, expected = b"", []
    for name, lines, comment, with_id, prefix in blocks:
        if comment:
            out += b": keep-alive" + eol
        if name is not None:
            out += b"event: " + name.encode() + eol
        if with_id:
            out += b"id: 7" + eol
        out += b"".join(prefix + line + eol for line in lines)
        out += eol
        if prefix == b"data:":  # "data:" then " x": the one space after the colon is dropped
            lines = [line[1:] if line.startswith(b" ") else line for line in lines]
        expected.append((name, b"\n".join(lines) if lines else None))
    return out, expected


def decode(chunks: list[bytes]) -> list[Event]:
    decoder = Decoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.close()


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=400, deadline=None)
@given(stream=streams(), data=st.data())
def test_any_split_decodes_to_the_same_events(
    stream: tuple[bytes, list[Any]], data: st.DataObject
) -> None:
    raw, expected = stream
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    whole, parts = decode([raw]), decode(split(raw, cuts))
    assert parts == whole
    assert [(e.event, e.data) for e in whole] == expected
    assert b"".join(e.raw for e in whole) == raw


@settings(max_examples=100, deadline=None)
@given(stream=streams())
def test_byte_at_a_time(stream: tuple[bytes, list[Any]]) -> None:
    raw, _ = stream
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == decode([raw])


def test_line_endings() -> None:
    for eol in ENDINGS:
        raw = b"event: message_start" + eol + b"data: {}" + eol + eol + b"data: two" + eol + eol
        events = decode([raw])
        assert [(e.event, e.data) for e in events] == [("message_start", b"{}"), (None, b"two")]
        assert b"".join(e.raw for e in events) == raw


def test_crlf_cut_between_cr_and_lf() -> None:
    raw = b"data: a\r\n\r\ndata: b\r\n\r\n"
    for k in range(len(raw) + 1):
        assert [e.data for e in decode([raw[:k], raw[k:]])] == [b"a", b"b"]


def test_comments_and_keep_alives_are_events_without_data() -> None:
    events = decode([b": ping\n\ndata: x\n: inside\n\n"])
    assert [(e.data, e.raw) for e in events] == [
        (None, b": ping\n\n"),
        (b"x", b"data: x\n: inside\n\n"),
    ]


def test_multi_line_data() -> None:
    (event,) = decode([b'data: {\ndata:   "a": 1\ndata:}\n\n'])
    assert event.data == b'{\n  "a": 1\n}'


def test_last_block_without_blank_line_is_delivered_on_close() -> None:
    decoder = Decoder()
    assert decoder.feed(b'data: {"done": true}') == []
    (event,) = decoder.close()
    assert event.data == b'{"done": true}'
    assert decoder.close() == []


def test_utf8_cut_inside_a_character() -> None:
    raw = "data: héllo ✓ 日本\n\n".encode()
    for k in range(len(raw) + 1):
        (event,) = decode([raw[:k], raw[k:]])
        assert event.data == "héllo ✓ 日本".encode()


def test_encode_round_trips() -> None:
    for data, name in ((b"plain", None), (b"two\nlines", "x"), (b"cr\r\nlf", "ping")):
        (event,) = decode([encode(data, name)])
        assert event.event == name
        assert event.data == data.replace(b"\r\n", b"\n")
