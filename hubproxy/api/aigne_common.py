"""What AIGNE's v1 and v2 faces share: who calls (a hub user or a signed app), the calls that
both versions serve (flat chat completions, embeddings, image generations), and errors in
AIGNE's shape.

A whole answer whose body names the call's debit (`usage.aigneHubCredits`) is rendered from
the gateway's OpenAI-shaped answer once the call is recorded (the debit is known then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from hubproxy.api.common import call_context
from hubproxy.api.middleware import ErrorBody
from hubproxy.api.render import respond
from hubproxy.api.state import GATEWAY, SETTINGS
from hubproxy.errors import BadRequest, HubError
from hubproxy.gateway import media
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.context import CallContext, Face, Part, Whole
from hubproxy.gateway.record import Call
from hubproxy.providers import aigne
from hubproxy.providers.base import JSON
from hubproxy.providers.openai import images

CLIENT_DID = "x-aigne-hub-client-did"
_MAX_DID = 256
CLIENT_DID_HEADER = {
    "name": CLIENT_DID, "in": "header", "required": False,
    "description": "The DID of the app the call is made through, recorded as the call's app.",
    "schema": {"type": "string", "maxLength": _MAX_DID},
}  # fmt: skip
CREDIT_PREFIX = "$"
EVENTS = "text/event-stream"
# What a call through the gateway may answer beyond bad input: credits short (402), a model
# the key may not use (403) or that is unknown (404), a rate limit (429), the upstream's
# failures (502, 503, 504).
CALL_ERRORS = (402, 403, 404, 429, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a call is for: the hub user, the app it came through, and who pays."""

    principal: Principal
    app_id: str | None = None
    app_user: str | None = None
    billing: str = "credits"


def client_app(request: web.Request) -> str | None:
    """The app a v2 caller names in x-aigne-hub-client-did (recorded as the call's app)."""
    value = request.headers.get(CLIENT_DID, "").strip()
    if len(value) > _MAX_DID:
        raise BadRequest(f"{CLIENT_DID} may have at most {_MAX_DID} characters.")
    return value or None


def context(request: web.Request, caller: Caller, body: JSON, face: Face) -> CallContext:
    ctx = call_context(request, caller.principal, body, face)
    return dataclasses.replace(
        ctx, app_id=caller.app_id, app_user=caller.app_user, billing=caller.billing
    )


def error_bodies(settings_link: str, paths: Iterable[str]) -> dict[str, ErrorBody]:
    """AIGNE's error object on each of `paths`; a 402 links to where to pay or subscribe."""

    def body(err: HubError) -> bytes:
        return aigne.error_body(err, link=settings_link if err.status == 402 else None)

    return dict.fromkeys(paths, body)


def payment_link(request: web.Request) -> str:
    return request.app[SETTINGS].aigne.payment_link


async def with_whole(
    parts: AsyncGenerator[Part, None], ctx: CallContext, render: Callable[[bytes, Call], bytes]
) -> AsyncGenerator[Part, None]:
    """The gateway's parts, a whole answer rendered by `render(body, its recorded call)`."""
    async with aclosing(parts) as inner:
        async for part in inner:
            if isinstance(part, Whole) and ctx.slot.call is not None:
                yield Whole(render(part.body, ctx.slot.call), part.headers)
            else:
                yield part


def face(
    name: str,
    stream: Callable[[Any], Any] | None = None,
    reply: Callable[[bytes], bytes] | None = None,
    error_event: Callable[[HubError], bytes] = aigne.error_event,
) -> Face:
    return Face(
        name=name,
        stream=stream or (lambda inner: inner),
        reply=reply or (lambda raw: raw),
        error_event=error_event,
    )


# --- the calls v1 and v2 both serve ---------------------------------------------------------


async def completions(request: web.Request, caller: Caller, body: Any) -> web.StreamResponse:
    """The flat camelCase chat completions; streamed when the client accepts SSE."""
    stream = "text/event-stream" in request.headers.get("Accept", "")
    default = request.app[SETTINGS].aigne.default_model
    openai_body = aigne.completions_request(body, stream=stream, default_model=default)
    shape = face(
        "aigne-completions",
        stream=aigne.CompletionsStreamFromOpenAI,
        reply=aigne.completions_reply,
        error_event=aigne.completions_error_event,
    )
    ctx = context(request, caller, openai_body, shape)
    return await respond(request, request.app[GATEWAY].chat(ctx))


async def embeddings(request: web.Request, caller: Caller, body: Any) -> web.StreamResponse:
    """{"model", "input": texts | {"input": texts, "modelOptions"}} → OpenAI's embeddings."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    given: Any = body.get("input")
    options: Any = {}
    if isinstance(given, dict):
        given, options = given.get("input"), given.get("modelOptions") or {}
    if not isinstance(options, dict):
        raise BadRequest("'input.modelOptions' must be an object.", param="input.modelOptions")
    model = options.get("model") or body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("'model' must be a non-empty string.", param="model")
    if not isinstance(given, str | list) or given in ("", []):
        raise BadRequest("'input' must be a non-empty string or list.", param="input")
    openai_body: JSON = {"model": model.strip(), "input": given}
    for name in ("dimensions", "encoding_format"):
        if name in options:
            openai_body[name] = options[name]
    ctx = context(request, caller, openai_body, face("aigne"))
    return await respond(request, request.app[GATEWAY].embeddings(ctx))


async def image_generations(request: web.Request, caller: Caller, body: Any) -> web.StreamResponse:
    """AIGNE Hub's /image/generations: {model, prompt, n, size, quality, responseFormat} →
    {images, data, model, usage: {aigneHubCredits, creditPrefix}}, each image as
    {base64, b64_json, b64Json, url}."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    openai_body = {k: v for k, v in body.items() if k in ("model", "prompt", "n", "size",
                                                           "quality")}  # fmt: skip
    if body.get("responseFormat") is not None:
        openai_body["response_format"] = body["responseFormat"]
    return await _image_call(request, caller, openai_body, _generations_reply)


async def _image_call(
    request: web.Request, caller: Caller, openai_body: JSON, shape: Callable[[Any, str], JSON]
) -> web.StreamResponse:
    req = images.generation_request(openai_body)
    ctx = context(request, caller, openai_body, face("aigne"))
    model = req.model

    def render(raw: bytes, call: Call) -> bytes:
        out = shape(orjson.loads(raw), model)
        out["usage"] = {**aigne.aigne_usage(None, debit=call.credits, call_id=call.id),
                        "creditPrefix": CREDIT_PREFIX}  # fmt: skip
        return orjson.dumps(out)

    parts = request.app[GATEWAY].run(ctx, media.images(req))
    return await respond(request, with_whole(parts, ctx, render))


def _generations_reply(obj: Any, model: str) -> JSON:
    items = []
    for d in obj.get("data") or ():
        b64 = d.get("b64_json") if isinstance(d, dict) else None
        url = d.get("url") if isinstance(d, dict) else None
        items.append({"base64": b64, "b64_json": b64, "b64Json": b64, "url": url})
    return {"images": items, "data": items, "model": model}


def typed_images_reply(obj: Any, model: str) -> JSON:
    """/api/v2/image's typed items, as AIGNE's SDK reads them: a file (base64) or a URL
    (fetched without a key: the demo's are data: URLs)."""
    items: list[JSON] = []
    for d in obj.get("data") or ():
        if not isinstance(d, dict):
            continue
        if isinstance(d.get("b64_json"), str):
            items.append({"type": "file", "data": d["b64_json"], "mimeType": "image/png"})
        elif isinstance(d.get("url"), str):
            items.append({"type": "url", "url": d["url"], "mimeType": "image/png"})
    return {"images": items, "model": model, "modelWithProvider": model}


async def typed_image(
    request: web.Request, caller: Caller, body: Any, default_model: str
) -> web.StreamResponse:
    """AIGNE's /image: {input: {prompt, n, outputFileType, modelOptions: {model, size,
    quality}}} → typed image items."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        raise BadRequest("'input' must be an object with 'prompt'.", param="input")
    given = body["input"]
    options = given.get("modelOptions") or {}
    if not isinstance(options, dict):
        raise BadRequest("'input.modelOptions' must be an object.", param="input.modelOptions")
    if given.get("image"):
        raise BadRequest("Editing a given image is not served; send only a prompt.",
                         param="input.image")  # fmt: skip
    openai_body: JSON = {
        "model": options.get("model") or body.get("model") or default_model,
        "prompt": given.get("prompt"),
    }
    for name in ("n", "size", "quality"):
        value = given.get(name, options.get(name))
        if value is not None:
            openai_body[name] = value
    return await _image_call(request, caller, openai_body, typed_images_reply)
