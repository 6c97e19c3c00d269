"""What every handler does first: authenticate the caller, read the JSON body, check fields."""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

import orjson
from aiohttp import web

from hubproxy.api.context import AUTHED, CALL_SLOT, REQUEST_ID, TRACE_HEADERS, TRACE_ID
from hubproxy.api.middleware import PRINCIPAL_NAME, SESSION_PRINCIPAL
from hubproxy.api.state import FOLLOWER, KEYS, SETTINGS
from hubproxy.errors import BadRequest, NotFound, RequestTimeout, Unauthorized
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.context import OPENAI, CallContext, Face

# How deep a request body may nest arrays and objects. orjson writes at most 254 levels and
# the gateway wraps a body in a few levels of its own (a provider's envelope), and the token
# estimate walks it recursively: far below both, and far above any real request.
MAX_DEPTH = 128
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # as signed bytes: +1, +1, -1, -1
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


async def authenticate(request: web.Request) -> Principal:
    """The caller, from the in-memory key cache. Only an unknown key makes the cache check
    (rate-limited) whether keys changed since its last reload. A dashboard session stands in
    for the key when none was sent (its middleware checked the key is still active)."""
    if SESSION_PRINCIPAL in request:
        session = request[SESSION_PRINCIPAL]
        request[PRINCIPAL_NAME] = session.user_name
        request[AUTHED] = time.perf_counter()
        return session
    cache = request.app[KEYS]
    try:
        principal = cache.authenticate(request.headers)
    except Unauthorized as exc:
        if exc.code != "invalid_api_key" or not await request.app[FOLLOWER].on_unknown_key():
            raise
        principal = cache.authenticate(request.headers)
    request[PRINCIPAL_NAME] = principal.user_name
    request[AUTHED] = time.perf_counter()
    return principal


async def admin(request: web.Request) -> Principal:
    """The caller, if an admin or owner. A member gets the answer of a route that does not
    exist: the admin API is not theirs to discover, and nothing they sent is read."""
    principal = await authenticate(request)
    if not principal.is_admin:
        raise NotFound(f"Unknown route: {request.method} {request.path}", code="unknown_route")
    return principal


def call_context(
    request: web.Request,
    principal: Principal,
    body: dict[str, Any],
    face: Face = OPENAI,
    client_headers: Mapping[str, str] | None = None,
) -> CallContext:
    """The core's view of this request; the call it starts is left where the access line
    finds it."""
    ctx = CallContext(
        request_id=request[REQUEST_ID],
        principal=principal,
        body=body,
        face=face,
        trace_id=request.get(TRACE_ID),
        forward=request.get(TRACE_HEADERS) or {},
        client_headers=client_headers or {},
    )
    request[CALL_SLOT] = ctx.slot
    return ctx


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong (413 if too large, 408 if
    it takes longer than the read timeout to arrive)."""
    timeout = request.app[SETTINGS].server.read_timeout_s
    try:
        if request.content.is_eof():  # all of it came with the headers: nothing to wait for
            raw = await request.read()
        else:
            async with asyncio.timeout(timeout):
                raw = await request.read()
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout:g} seconds."
        ) from None
    except web.RequestPayloadError:  # e.g. bytes that are not in their Content-Encoding
        encoding = request.headers.get("Content-Encoding", "identity")[:32]
        raise BadRequest(
            f"The request body could not be read as sent (Content-Encoding: {encoding}).",
            code="invalid_body",
        ) from None
    if not raw:
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    if too_deep(raw, MAX_DEPTH):
        raise BadRequest(
            f"The request body is nested too deeply: at most {MAX_DEPTH} levels of arrays "
            "and objects.",
            code="nested_too_deeply",
        )
    return body


def too_deep(raw: bytes, limit: int) -> bool:
    """Whether valid JSON `raw` nests arrays and objects more than `limit` levels deep.

    Measured on the bytes in linear time, mostly in C: strings are cut out (a bracket inside
    one is text), the brackets left become +1 and -1, and their running sum peaks at the
    depth. A body with few brackets is not even scanned."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    signs = _STRING.sub(b"", raw).translate(_SIGNS, _NOT_BRACKETS)
    return max(accumulate(array("b", signs)), default=0) > limit


def require(body: dict[str, Any], name: str, kind: type, what: str) -> None:
    value = body.get(name)
    if value is None:
        raise BadRequest(f"Missing required parameter: '{name}'.", param=name)
    if not isinstance(value, kind) or (kind is list and not value):
        raise BadRequest(f"'{name}' must be {what}.", param=name)
