"""OpenAI's legacy text completions, POST /v1/completions: passed through to an upstream that
still serves them (with the usage tap), a 400 pointing at /v1/chat/completions for any other."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api.common import authenticate, call_context, read_json, require
from hubproxy.api.render import respond
from hubproxy.api.state import GATEWAY
from hubproxy.errors import BadRequest
from hubproxy.gateway import plans

routes = web.RouteTableDef()


@routes.post("/v1/completions")
async def completions(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'openai/gpt-3.5-turbo-instruct'")
    prompt = body.get("prompt")
    if prompt is None:
        raise BadRequest("Missing required parameter: 'prompt'.", param="prompt")
    if not isinstance(prompt, str | list):
        raise BadRequest("'prompt' must be a string or a list.", param="prompt")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BadRequest("'stream' must be true or false.", param="stream")
    ctx = call_context(request, principal, body)
    return await respond(request, request.app[GATEWAY].run(ctx, plans.completions))
