"""What every handler does first: authenticate the caller, read the JSON body, check fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from hubproxy.api.context import CALL_SLOT, REQUEST_ID, TRACE_HEADERS, TRACE_ID
from hubproxy.api.middleware import PRINCIPAL_NAME, SESSION_PRINCIPAL
from hubproxy.api.state import FOLLOWER, KEYS
from hubproxy.errors import BadRequest, Unauthorized
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.context import OPENAI, CallContext, Face


async def authenticate(request: web.Request) -> Principal:
    """The caller, from the in-memory key cache. Only an unknown key makes the cache check
    (rate-limited) whether keys changed since its last reload. A dashboard session stands in
    for the key when none was sent (its middleware checked the key is still active)."""
    if SESSION_PRINCIPAL in request:
        session = request[SESSION_PRINCIPAL]
        request[PRINCIPAL_NAME] = session.user_name
        return session
    cache = request.app[KEYS]
    try:
        principal = cache.authenticate(request.headers)
    except Unauthorized as exc:
        if exc.code != "invalid_api_key" or not await request.app[FOLLOWER].on_unknown_key():
            raise
        principal = cache.authenticate(request.headers)
    request[PRINCIPAL_NAME] = principal.user_name
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
    """The body as a JSON object, or a 400 that says what is wrong (413 if too large)."""
    raw = await request.read()
    if not raw:
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def require(body: dict[str, Any], name: str, kind: type, what: str) -> None:
    value = body.get(name)
    if value is None:
        raise BadRequest(f"Missing required parameter: '{name}'.", param=name)
    if not isinstance(value, kind) or (kind is list and not value):
        raise BadRequest(f"'{name}' must be {what}.", param=name)
