"""Anthropic's own endpoint, POST /v1/messages: the Anthropic SDK works against hubproxy."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api.common import authenticate, read_json, require
from hubproxy.api.middleware import ERROR_BODY
from hubproxy.api.state import GATEWAY
from hubproxy.providers.anthropic import anthropic_error_body

routes = web.RouteTableDef()


@routes.post("/v1/messages")
async def messages(request: web.Request) -> web.StreamResponse:
    request[ERROR_BODY] = anthropic_error_body  # errors in Anthropic's shape, from here on
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'anthropic/claude-sonnet-4-5'")
    require(body, "messages", list, "a non-empty list of messages")
    return await request.app[GATEWAY].messages(request, principal, body)
