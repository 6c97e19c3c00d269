"""The OpenAI-compatible endpoints under /v1: chat completions, embeddings, models (the list
and one by id)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hubproxy.api.common import authenticate, call_context, read_json, require
from hubproxy.api.render import respond
from hubproxy.api.state import CATALOG, GATEWAY
from hubproxy.errors import BadRequest, NotFound

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
    if "messages" in body:  # as OpenAI answers it: a chat field sent to the wrong endpoint
        raise BadRequest(
            "Unrecognized request argument supplied: messages. An embeddings request sends "
            "'input'; chat goes to /v1/chat/completions.",
            param="messages",
        )
    ctx = call_context(request, principal, body)
    return await respond(request, request.app[GATEWAY].embeddings(ctx))


def listed_models(app: web.Application) -> list[dict[str, Any]]:
    """The model objects the caller may name: what GET /v1/models lists and what
    GET /v1/models/{id} finds, from the one source."""
    return [
        {"id": m["id"], "object": "model", "created": 0, "owned_by": m["owned_by"]}
        for m in app[CATALOG].current.listed()
    ]


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    await authenticate(request)
    data = listed_models(request.app)
    return web.Response(
        body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
    )


@routes.get("/v1/models/{model:.+}")
async def model(request: web.Request) -> web.Response:
    """One model object; its id is provider/model (slashes and all)."""
    await authenticate(request)
    wanted = request.match_info["model"]
    found = next((m for m in listed_models(request.app) if m["id"] == wanted), None)
    if found is None:
        raise NotFound(
            f"The model '{wanted}' does not exist.", code="model_not_found", param="model"
        )
    return web.Response(body=orjson.dumps(found), content_type="application/json")


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")
