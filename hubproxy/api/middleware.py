"""The edge of every request: request id, trace context, errors in the client's shape, access."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from hubproxy.api.context import AUTHED, CALL_SLOT, REQUEST_ID, STARTED, TRACE_HEADERS, TRACE_ID
from hubproxy.api.state import METRICS, SETTINGS, TRACING
from hubproxy.errors import HubError, MethodNotAllowed, NotFound, PayloadTooLarge, from_status
from hubproxy.gateway.auth import Principal
from hubproxy.ids import random_hex
from hubproxy.telemetry import access

ErrorBody = Callable[[HubError], bytes]
# Paths whose clients expect another error shape (the Anthropic-native endpoint), so that
# even the router's own 404/405 there speaks the client's language.
ERROR_BODIES: web.AppKey[dict[str, ErrorBody]] = web.AppKey("error_bodies")
PRINCIPAL_NAME = web.RequestKey("principal_name", str)
# The code (else the type) of the error a request was answered with: the access line's reason.
_REASON = web.RequestKey("error_reason", str)
# The caller as a dashboard session proved it (hubproxy/ui/session.py), when no key was sent.
SESSION_PRINCIPAL = web.RequestKey("session_principal", Principal)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

log = structlog.get_logger("hubproxy")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# The dashboard's session layer (hubproxy/ui/session.py), run only for requests that can
# have a session (a cookie, or a page under /ui): the API's hot path pays nothing for it.
SESSIONS: web.AppKey[Middleware] = web.AppKey("sessions")


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = request[STARTED] = time.perf_counter()
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if _REQUEST_ID.match(incoming) else random_hex(96)
    span = request.app[TRACING].start("http " + request.method, request.headers)
    request[TRACE_ID] = span.trace_id
    request[TRACE_HEADERS] = span.outgoing
    status = 499  # until we know better: the client left
    try:
        response = await _answer(request, handler)
        status = response.status
        if not response.prepared:  # a stream was prepared with its id already
            response.headers["X-Request-Id"] = request[REQUEST_ID]
            response.headers["Server-Timing"] = server_timing(request)
        return response
    finally:
        slot = request.get(CALL_SLOT)
        span.end(status, slot.call if slot is not None else None)
        metrics = request.app.get(METRICS)
        if metrics is not None and metrics.on:
            metrics.request(status)
        _access_line(request, status, started)


def server_timing(request: web.Request) -> str:
    """The Server-Timing header: auth, admit (to the call's start), upstream (to its first
    byte) and total, in milliseconds, as far as the request got."""
    now, started = time.perf_counter(), request[STARTED]
    parts = []
    authed = request.get(AUTHED)
    if authed is not None:
        parts.append(f"auth;dur={(authed - started) * 1000:.2f}")
    slot = request.get(CALL_SLOT)
    call = slot.call if slot is not None else None
    if call is not None:
        if authed is not None:
            parts.append(f"admit;dur={(call.started - authed) * 1000:.2f}")
        upstream = call.ttfb_ms if call.ttfb_ms is not None else (now - call.started) * 1000
        parts.append(f"upstream;dur={upstream:.2f}")
    parts.append(f"total;dur={(now - started) * 1000:.2f}")
    return ", ".join(parts)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer, or the error it raised in the client's shape."""
    try:
        sessions = request.app.get(SESSIONS)
        if sessions is not None and ("Cookie" in request.headers or request.path.startswith("/ui")):
            return await sessions(request, handler)
        return await handler(request)
    except HubError as err:
        return _error_response(request, err)
    except web.HTTPException as exc:
        return _error_response(request, _from_http(request, exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled_error", request_id=request[REQUEST_ID])
        return _error_response(request, HubError("Internal error; see the server log."))


def _error_response(request: web.Request, err: HubError) -> web.Response:
    request[_REASON] = err.code or err.type
    body = request.app[ERROR_BODIES].get(request.path, HubError.to_json)(err)
    response = web.Response(
        status=err.status, body=body, content_type="application/json", headers=err.headers
    )
    if err.status == 408 or request.content.exception() is not None:
        # The rest of the body is late or unreadable: end the connection rather than let
        # aiohttp wait to drain it before the next request.
        response.force_close()
    return response


def _from_http(request: web.Request, exc: web.HTTPException) -> HubError:
    if isinstance(exc, web.HTTPNotFound):
        return NotFound(f"Unknown route: {request.method} {request.path}", code="unknown_route")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(
            f"{request.method} is not allowed on {request.path}; use {allowed}.",
            headers={"Allow": allowed},
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(
            f"The request body is larger than the limit of "
            f"{request.app[SETTINGS].server.max_body_bytes} bytes."
        )
    return from_status(exc.status, exc.reason)


def _access_line(request: web.Request, status: int, started: float) -> None:
    slot = request.get(CALL_SLOT)
    call = slot.call if slot is not None else None
    fields: dict[str, object] = {
        "request_id": request[REQUEST_ID],
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    reason = request.get(_REASON)
    if reason is not None and status >= 400:
        fields["reason"] = reason
    user = request.get(PRINCIPAL_NAME)
    if user is not None:
        fields["user"] = user
    if call is not None:
        usage = call.usage
        fields.update(
            model=f"{call.provider}/{call.model}",
            call=call.status,
            stream=call.stream,
            ttfb_ms=call.ttfb_ms,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )
        if call.error:
            fields["error"] = call.error
    # A 5xx is the gateway's or an upstream's failure: an operator should see it.
    access.write(fields, warning=status >= 500)
