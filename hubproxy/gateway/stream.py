"""Relaying a stream: upstream bytes → SSE events → translator → client, chunk by chunk.

The client gets each upstream chunk's events as soon as they are decoded; nothing is buffered
but a partial event. The terminal bytes ([DONE], message_stop) are held until the call is
recorded, so a client never sees a complete answer the log would lose to a crash. A client
that leaves cancels the upstream at once, and what it was given is still recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from aiohttp import web

from hubproxy.api.context import REQUEST_ID
from hubproxy.errors import HubError, UpstreamError
from hubproxy.gateway.record import Call
from hubproxy.gateway.transport import Response
from hubproxy.providers.base import StreamTranslator
from hubproxy.providers.sse import Decoder

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell nginx and friends not to buffer the stream
}

# record(status, error) queues the call's final write and returns a future that resolves
# once it is committed.
Record = Callable[[str, "str | None"], "asyncio.Future[None]"]
ErrorEvent = Callable[[HubError], bytes]

CLIENT_GONE = "client disconnected"

log = structlog.get_logger("hubproxy.pipeline")


def failure(exc: BaseException) -> str:
    """What a call that ended in `exc` records as its error."""
    if isinstance(exc, HubError):
        return exc.message
    if isinstance(exc, asyncio.CancelledError | ConnectionResetError):
        return CLIENT_GONE  # aiohttp cancels the handler, or the write fails
    return f"internal error: {type(exc).__name__}"


async def relay(
    request: web.Request,
    upstream: Response,
    translator: StreamTranslator,
    call: Call,
    record: Record,
    error_event: ErrorEvent,
    headers: dict[str, str],
) -> web.StreamResponse:
    headers = {**SSE_HEADERS, **headers, "X-Request-Id": request[REQUEST_ID]}
    response = web.StreamResponse(status=200, headers=headers)
    try:
        await response.prepare(request)
        try:
            await _pump(upstream, translator, call, response)
        except ConnectionResetError:
            raise  # the client is gone: nothing can be sent to it
        except Exception as exc:
            # After the first byte, an error can only travel as an event in the stream.
            err = exc if isinstance(exc, HubError) else _internal(exc)
            call.upstream_status = call.upstream_status or err.status
            await record("failed", failure(exc))
            await response.write_eof(error_event(err))
            return response
        await record("success", None)
        await response.write_eof(translator.end())  # the held terminal bytes, and the end
        return response
    except BaseException as exc:
        # The client went away, or something broke: the call is still recorded (and its
        # hold settled), without waiting, since no bytes are left to release.
        if call.status == "processing":
            record("failed", failure(exc))
        raise
    finally:
        upstream.close()


def _internal(exc: Exception) -> HubError:
    log.exception("stream_failed", error=type(exc).__name__)
    return HubError("Internal error; see the server log.")


async def _pump(
    upstream: Response, translator: StreamTranslator, call: Call, response: web.StreamResponse
) -> None:
    decoder = Decoder()
    feed = translator.feed
    while chunk := await upstream.readany():
        if call.ttfb_ms is None:
            call.first_byte()
        # One write per upstream chunk; what came before an error event still goes out.
        out: list[bytes] = []
        try:
            for event in decoder.feed(chunk):
                out.append(feed(event))
        finally:
            if out and (data := b"".join(out)):
                await response.write(data)
        if translator.finished:
            return
    out = [feed(event) for event in decoder.close()]
    if data := b"".join(out):
        await response.write(data)
    if not translator.finished:
        raise UpstreamError(
            "The upstream provider ended the stream before it was complete.",
            code="upstream_incomplete",
        )
