"""AIGNE Hub's v2 API (hub keys, credits): /api/v2/chat in AIGNE's own format, the flat chat
completions, embeddings and images. The x-aigne-hub-client-did header is the call's app."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web

from hubproxy.api import aigne_answers as answers
from hubproxy.api import aigne_common as common
from hubproxy.api import aigne_shapes as shapes
from hubproxy.api.common import authenticate
from hubproxy.api.render import respond
from hubproxy.api.schema import BEARER_SCHEMES, Api, Security
from hubproxy.api.state import GATEWAY, SETTINGS
from hubproxy.gateway.record import Call
from hubproxy.providers import aigne

api = Api(error=answers.AigneError, tag="aigne v2")
DEFAULT_IMAGE_MODEL = "openai/gpt-image-1"  # AIGNE's SDK's default
JSON = dict[str, Any]


async def caller(request: web.Request) -> common.Caller:
    principal = await authenticate(request)
    return common.Caller(principal, app_id=common.client_app(request))


# A hub key, and the app the call is made through (recorded as the call's app).
HUB_KEY = Security(caller, BEARER_SCHEMES, headers=(common.CLIENT_DID_HEADER,))


@api.post("/api/v2/chat", ok=answers.AigneChatReply, auth=HUB_KEY, errors=common.CALL_ERRORS,
          media=(common.EVENTS,))  # fmt: skip
async def chat(
    request: web.Request, caller: common.Caller, body: Annotated[JSON, shapes.AigneChatRequest]
) -> web.StreamResponse:
    """AIGNE's native chat.

    Streamed when options.streaming is set, as AIGNE's delta events ending with the usage (its
    aigneHubCredits is the debit) and then the stream's close."""
    default = request.app[SETTINGS].aigne.default_model
    openai_body, json_mode = aigne.chat_request(body, default)
    model = openai_body["model"]
    face = common.face(
        "aigne",
        stream=lambda inner: aigne.ChatStreamFromOpenAI(
            inner, model=model, json_mode=json_mode, credit_prefix=common.CREDIT_PREFIX
        ),
    )
    ctx = common.context(request, caller, openai_body, face)

    def render(raw: bytes, call: Call) -> bytes:
        return aigne.chat_reply(
            raw, model=model, debit=call.credits, json_mode=json_mode,
            credit_prefix=common.CREDIT_PREFIX, call_id=call.id,
        )  # fmt: skip

    return await respond(request, common.with_whole(request.app[GATEWAY].chat(ctx), ctx, render))


@api.post("/api/v2/chat/completions", ok=answers.AigneCompletionsReply, auth=HUB_KEY,
          errors=common.CALL_ERRORS, media=(common.EVENTS,))  # fmt: skip
async def chat_completions(
    request: web.Request,
    caller: common.Caller,
    body: Annotated[JSON, shapes.AigneCompletionsRequest],
) -> web.StreamResponse:
    """Chat completions in AIGNE's flat camelCase; streamed when the client accepts SSE."""
    return await common.completions(request, caller, body)


@api.post("/api/v2/embeddings", ok=answers.AigneEmbeddings, auth=HUB_KEY,
          errors=common.CALL_ERRORS)  # fmt: skip
async def embeddings(
    request: web.Request,
    caller: common.Caller,
    body: Annotated[JSON, shapes.AigneEmbeddingsRequest],
) -> web.StreamResponse:
    """Embeddings: {"model", "input": texts | {"input": texts, "modelOptions"}}."""
    return await common.embeddings(request, caller, body)


@api.post("/api/v2/image/generations", ok=answers.AigneImages, auth=HUB_KEY,
          errors=common.CALL_ERRORS)  # fmt: skip
async def image_generations(
    request: web.Request, caller: common.Caller, body: Annotated[JSON, shapes.AigneImageRequest]
) -> web.StreamResponse:
    """Images, each as {base64, b64_json, b64Json, url}, with the call's debit."""
    return await common.image_generations(request, caller, body)


@api.post("/api/v2/image", ok=answers.AigneTypedImages, auth=HUB_KEY,
          errors=common.CALL_ERRORS)  # fmt: skip
async def image(
    request: web.Request,
    caller: common.Caller,
    body: Annotated[JSON, shapes.AigneTypedImageRequest],
) -> web.StreamResponse:
    """What AIGNE's SDK's AIGNEHubImageModel calls: typed image items."""
    return await common.typed_image(request, caller, body, DEFAULT_IMAGE_MODEL)
