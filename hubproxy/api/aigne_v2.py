"""AIGNE Hub's v2 API (hub keys, credits): /api/v2/chat in AIGNE's own format, the flat chat
completions, embeddings and images. The x-aigne-hub-client-did header is the call's app."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api import aigne_common as common
from hubproxy.api.common import authenticate, read_json
from hubproxy.api.render import respond
from hubproxy.api.state import GATEWAY, SETTINGS
from hubproxy.gateway.record import Call
from hubproxy.providers import aigne

routes = web.RouteTableDef()
PATHS = ("/api/v2/chat", "/api/v2/chat/completions", "/api/v2/embeddings",
         "/api/v2/image/generations", "/api/v2/image")  # fmt: skip
DEFAULT_IMAGE_MODEL = "openai/gpt-image-1"  # AIGNE's SDK's default


async def caller(request: web.Request) -> common.Caller:
    principal = await authenticate(request)
    return common.Caller(principal, app_id=common.client_app(request))


@routes.post("/api/v2/chat")
async def chat(request: web.Request) -> web.StreamResponse:
    """AIGNE's native chat: streamed when options.streaming is set, as AIGNE's delta events
    ending with the usage (its aigneHubCredits is the debit) and then the stream's close."""
    who = await caller(request)
    default = request.app[SETTINGS].aigne.default_model
    body, json_mode = aigne.chat_request(await read_json(request), default)
    model = body["model"]
    face = common.face(
        "aigne",
        stream=lambda inner: aigne.ChatStreamFromOpenAI(
            inner, model=model, json_mode=json_mode, credit_prefix=common.CREDIT_PREFIX
        ),
    )
    ctx = common.context(request, who, body, face)

    def render(raw: bytes, call: Call) -> bytes:
        return aigne.chat_reply(
            raw, model=model, debit=call.credits, json_mode=json_mode,
            credit_prefix=common.CREDIT_PREFIX, call_id=call.id,
        )  # fmt: skip

    return await respond(request, common.with_whole(request.app[GATEWAY].chat(ctx), ctx, render))


@routes.post("/api/v2/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    who = await caller(request)
    return await common.completions(request, who, await read_json(request))


@routes.post("/api/v2/embeddings")
async def embeddings(request: web.Request) -> web.StreamResponse:
    who = await caller(request)
    return await common.embeddings(request, who, await read_json(request))


@routes.post("/api/v2/image/generations")
async def image_generations(request: web.Request) -> web.StreamResponse:
    who = await caller(request)
    return await common.image_generations(request, who, await read_json(request))


@routes.post("/api/v2/image")
async def image(request: web.Request) -> web.StreamResponse:
    """What AIGNE's SDK's AIGNEHubImageModel calls: typed image items."""
    who = await caller(request)
    return await common.typed_image(request, who, await read_json(request), DEFAULT_IMAGE_MODEL)
