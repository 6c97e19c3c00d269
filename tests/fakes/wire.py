"""What the provider fakes share: the captured data, cutting bodies into tiny writes, a server.

Every fake answer, JSON or SSE, is written in small pieces (1 to 7 bytes by default, or one
byte at a time), each its own `resp.write()` followed by a turn of the event loop, so the
gateway reads it cut inside lines, inside CRLF pairs and inside multi-byte UTF-8 characters.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

DATA = Path(__file__).parent.parent / "data"
# Piece sizes, taken in turn. Co-prime-ish with every line length in the data, so the cuts
# land at a different offset of each line.
SMALL_PIECES: tuple[int, ...] = (1, 3, 2, 7, 5, 1, 4, 6)
BYTE_BY_BYTE: tuple[int, ...] = (1,)


def data(name: str) -> bytes:
    """A file of tests/data, as bytes (see tests/data/README.md for where each comes from)."""
    return (DATA / name).read_bytes()


def pieces(raw: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """`raw` cut into consecutive pieces of the given sizes, taken in turn."""
    at = 0
    for size in itertools.cycle(sizes):
        if at >= len(raw):
            return
        yield raw[at : at + size]
        at += size


@dataclass
class Seen:
    """One request as the fake received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        """A header, whatever its case on the wire."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass
class Recorder:
    """The requests a fake received and the bodies it answered with, in order."""

    requests: list[Seen] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    sizes: Sequence[int] = SMALL_PIECES
    url: str = ""  # the fake's base URL, once it is served
    # With hold_after = n, an answer stops after its first n SSE events (n blank lines), sets
    # `holding`, and goes on only once `release` is set: a client can leave mid-stream.
    hold_after: int = 0
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def seen(self, request: web.Request) -> Seen:
        raw = await request.read()
        try:
            body = await request.json() if raw else None
        except ValueError:
            body = raw
        headers = {str(k): v for k, v in request.headers.items()}
        seen = Seen(request.path, dict(request.query), headers, body)
        self.requests.append(seen)
        return seen

    async def send(
        self,
        request: web.Request,
        raw: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Answer with `raw`, written in pieces; the whole body is kept in `sent`."""
        self.sent.append(raw)
        resp = web.StreamResponse(status=status, headers=headers or {})
        resp.content_type = content_type
        await resp.prepare(request)
        cut = _after_events(raw, self.hold_after) if self.hold_after else len(raw)
        for part in (raw[:cut], raw[cut:]):
            for piece in pieces(part, self.sizes):
                await resp.write(piece)
                # Two turns of the loop: one for the gateway's socket to read this piece, one
                # for the gateway to take it from its buffer before the next piece arrives.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            if cut < len(raw) and not self.holding.is_set():
                self.holding.set()
                await self.release.wait()
        await resp.write_eof()
        return resp


def _after_events(raw: bytes, n: int) -> int:
    """The offset just after the n-th SSE event of `raw` (LF or CRLF lines)."""
    at = 0
    for _ in range(n):
        lf, crlf = raw.find(b"\n\n", at), raw.find(b"\r\n\r\n", at)
        ends = [(i, size) for i, size in ((lf, 2), (crlf, 4)) if i >= 0]
        if not ends:
            return len(raw)
        i, size = min(ends)
        at = i + size
    return at


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL (no trailing slash)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
