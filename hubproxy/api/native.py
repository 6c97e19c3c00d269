"""Anthropic's own endpoints, POST /v1/messages and /v1/messages/count_tokens: the Anthropic
SDK works against hubproxy."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api.common import authenticate, call_context, read_json, require
from hubproxy.api.middleware import ErrorBody
from hubproxy.api.render import respond
from hubproxy.api.state import GATEWAY
from hubproxy.gateway.context import Face
from hubproxy.gateway.counting import count_tokens
from hubproxy.providers import anthropic
from hubproxy.providers.anthropic import anthropic_error_body

routes = web.RouteTableDef()
ERROR_BODIES: dict[str, ErrorBody] = {
    "/v1/messages": anthropic_error_body,
    "/v1/messages/count_tokens": anthropic_error_body,
}
# On a count_tokens answer that is the gateway's estimate, not the provider's count.
ESTIMATE_HEADER = "X-Hubproxy-Token-Count"


@routes.post("/v1/messages")
async def messages(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'anthropic/claude-sonnet-4-5'")
    require(body, "messages", list, "a non-empty list of messages")
    require(body, "max_tokens", int, "a whole number of tokens")  # Anthropic's API requires it
    opt_ins = {k: v for k, v in request.headers.items() if k.lower() == "anthropic-beta"}
    ctx = call_context(request, principal, body, face(body["model"]), client_headers=opt_ins)
    return await respond(request, request.app[GATEWAY].messages(ctx))


@routes.post("/v1/messages/count_tokens")
async def messages_count_tokens(request: web.Request) -> web.Response:
    """Free, and not a recorded call: the provider's count, or the gateway's estimate."""
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'anthropic/claude-sonnet-4-5'")
    require(body, "messages", list, "a non-empty list of messages")
    opt_ins = {k: v for k, v in request.headers.items() if k.lower() == "anthropic-beta"}
    ctx = call_context(request, principal, body, face(body["model"]), client_headers=opt_ins)
    count = await count_tokens(request.app[GATEWAY], ctx)
    headers = {ESTIMATE_HEADER: "estimate"} if count.estimated else {}
    return web.Response(body=count.body, content_type="application/json", headers=headers)


def face(model: str) -> Face:
    """Answers in Anthropic's shape: an OpenAI-format upstream's are re-shaped (an Anthropic
    upstream's pass through, and only the error event applies)."""
    return Face(
        name="anthropic",
        stream=lambda inner: anthropic.MessagesStreamFromOpenAI(inner, model=model),
        reply=lambda raw: anthropic.messages_reply_from_openai(raw, model),
        error_event=anthropic.anthropic_error_event,
    )
