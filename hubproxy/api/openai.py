"""The OpenAI-compatible endpoints under /v1: chat completions, embeddings, models."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hubproxy.api.middleware import PRINCIPAL_NAME
from hubproxy.api.state import GATEWAY, FOLLOWER, KEYS, ROUTER
from hubproxy.auth import Principal
from hubproxy.errors import BadRequest, Unauthorized

routes = web.RouteTableDef()


async def authenticate(request: web.Request) -> Principal:
    """The caller, from the in-memory key cache. Only an unknown key makes the cache check
    (rate-limited) whether keys changed since its last reload."""
    cache = request.app[KEYS]
    try:
        principal = cache.authenticate(request.headers)
    except Unauthorized as exc:
        if exc.code != "invalid_api_key" or not await request.app[FOLLOWER].on_unknown_key():
            raise
        principal = cache.authenticate(request.headers)
    request[PRINCIPAL_NAME] = principal.user_name
    return principal


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


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'openai/gpt-4o-mini'")
    require(body, "messages", list, "a non-empty list of messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("'stream' must be true or false.", param="stream")
    return await request.app[GATEWAY].chat(request, principal, body)


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
    return await request.app[GATEWAY].embeddings(request, principal, body)


@routes.get("/v1/models")
async def models(request: web.Request) -> web.Response:
    await authenticate(request)
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": model.partition("/")[0]}
        for model in request.app[ROUTER].models()
    ]
    return web.Response(
        body=orjson.dumps({"object": "list", "data": data}), content_type="application/json"
    )


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")
