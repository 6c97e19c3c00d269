"""Rendering the core's answer as an aiohttp response: a whole body, or a stream written as it
comes, its last bytes with the end of the body."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from aiohttp import web

from hubproxy.api.context import REQUEST_ID
from hubproxy.api.middleware import server_timing
from hubproxy.gateway.context import End, Head, Part, Whole

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell nginx and friends not to buffer the stream
}


class _Stream(web.StreamResponse):
    """A streamed answer whose head goes out with its first bytes, in one write (aiohttp's
    own Response does so for a whole answer): a send and a packet less per stream. The core
    yields the head once the upstream has answered, and its first bytes follow as they
    come; a stream that sends nothing has its head sent with its end."""

    _send_headers_immediately = False  # aiohttp's switch (web_response.py), as Response sets it


async def respond(
    request: web.Request,
    parts: AsyncGenerator[Part, None],
    *,
    sse: dict[str, str] = SSE_HEADERS,
    content_type: str = "application/json",
) -> web.StreamResponse:
    """Render `parts`. An error raised before the first part propagates (the middleware
    renders it with its status); the generator is always closed, so a client that leaves
    cancels the upstream and its call is recorded. `sse` are a stream's headers (another
    Content-Type for a stream that is not SSE), `content_type` a whole answer's."""
    async with aclosing(parts) as answer:
        first = await anext(answer)
        if isinstance(first, Whole):
            return web.Response(body=first.body, content_type=content_type, headers=first.headers)
        assert isinstance(first, Head)
        headers = {
            **sse, **first.headers, "X-Request-Id": request[REQUEST_ID],
            "Server-Timing": server_timing(request),
        }  # fmt: skip
        response = _Stream(status=200, headers=headers)
        await response.prepare(request)
        async for part in answer:
            if type(part) is bytes:
                await response.write(part)
            else:
                assert isinstance(part, End)
                await response.write_eof(part.data)
        return response
