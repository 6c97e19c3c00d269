"""Anthropic's own endpoint, POST /v1/messages: the Anthropic SDK works against hubproxy."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api.common import authenticate, read_json, require
from hubproxy.api.middleware import ErrorBody
from hubproxy.api.state import GATEWAY
from hubproxy.providers.anthropic.provider import anthropic_error_body

routes = web.RouteTableDef()
ERROR_BODIES: dict[str, ErrorBody] = {"/v1/messages": anthropic_error_body}


@routes.post("/v1/messages")
async def messages(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'anthropic/claude-sonnet-4-5'")
    require(body, "messages", list, "a non-empty list of messages")
    require(body, "max_tokens", int, "a whole number of tokens")  # Anthropic's API requires it
    return await request.app[GATEWAY].messages(request, principal, body)
