"""Server-sent events: an incremental decoder keeping each event's raw bytes, an encoder. Pure."""

from __future__ import annotations

from typing import NamedTuple


class Event(NamedTuple):
    """One SSE block. `data` is None for a block without data lines (a comment or keep-alive);
    `raw` is the block exactly as received, terminator included, so it can pass through."""

    event: str | None
    data: bytes | None
    raw: bytes


class Decoder:
    """Feed it chunks cut anywhere (inside a line, a CRLF, a UTF-8 character); it returns the
    complete events. Lines may end in LF, CRLF or CR, as the SSE specification allows."""

    __slots__ = ("_buf", "_data", "_event", "_scan")

    def __init__(self) -> None:
        self._buf = b""  # the bytes of the block being read, from its first byte
        self._scan = 0  # where in _buf the next unread line starts
        self._data: list[bytes] = []
        self._event: str | None = None

    @property
    def idle(self) -> bool:
        """No block is half read: the next chunk starts a new event."""
        return not self._buf

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[Event] = []
        start = 0  # first byte of the current block in buf
        i = self._scan
        size = len(buf)
        while i < size:
            lf = buf.find(b"\n", i)
            cr = buf.find(b"\r", i, lf if lf >= 0 else size)
            if cr >= 0:
                if cr + 1 == size:
                    break  # a CR at the end may be the first half of a CRLF: wait
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            if end == i:  # blank line: the block is complete
                events.append(self._dispatch(buf[start:nxt]))
                start = nxt
            else:
                self._field(buf[i:end])
            i = nxt
        self._buf = buf[start:]
        self._scan = i - start
        return events

    def close(self) -> list[Event]:
        """At end of input: a last block that lacks its blank line is still delivered if it has
        data (many servers end that way); anything else left over is dropped."""
        rest, tail = self._buf, self._buf[self._scan :]
        self._buf, self._scan = b"", 0
        if tail.endswith(b"\r"):
            tail = tail[:-1]
        if tail:  # the last line had no terminator
            self._field(tail)
        if self._data or rest:  # a last block without data still passes through as raw bytes
            return [self._dispatch(rest)]
        self._event = None
        return []

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            return  # a comment
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # "id" and "retry" steer browser reconnection; a proxy has no use for them.

    def _dispatch(self, raw: bytes) -> Event:
        data = self._data
        ev = Event(
            self._event,
            (data[0] if len(data) == 1 else b"\n".join(data)) if data else None,
            raw,
        )
        self._data, self._event = [], None
        return ev


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE block. Data with newlines is split over several data lines, as the format needs."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join(b"data: " + line + b"\n" for line in lines)
    else:
        body = b"data: " + data + b"\n"
    if event is not None:
        return b"event: " + event.encode() + b"\n" + body + b"\n"
    return body + b"\n"
