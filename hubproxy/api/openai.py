"""The OpenAI-compatible endpoints under /v1: chat completions, embeddings, models."""

from __future__ import annotations

import orjson
from aiohttp import web

from hubproxy.api.common import authenticate, call_context, read_json, require
from hubproxy.api.render import respond
from hubproxy.api.state import CATALOG, GATEWAY
from hubproxy.errors import BadRequest

routes = web.RouteTableDef()


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'openai/gpt-4o-mini'")
    require(body, "messages", list, "a non-empty list of messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("'stream' must be true or false.", param="stream")
    ctx = call_context(request, principal, body)
    return await respond(request, request.app[GATEWAY].chat(ctx))


@routes.post("/v1/embeddings")
async def embeddings(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'openai/text-embedding-3-small'")
    value = body.get("input")
    if value is None:
        raise BadRequest("Missing required parameter: 'input'.", param="input")
    if not isinstance(value, str | list) or value in ("", []):
        raise BadRequest("'input' must be a non-empty string or list.", param="input")
    ctx = call_context(request, principal, body)
    return await respond(request, request.app[GATEWAY].embeddings(ctx))


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    await authenticate(request)
    data = [
        {"id": m["id"], "object": "model", "created": 0, "owned_by": m["owned_by"]}
        for m in request.app[CATALOG].current.listed()
    ]
    return web.Response(
        body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
    )


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")
