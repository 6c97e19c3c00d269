"""OpenAI's media endpoints under /v1: image generation, speech (streamed audio), transcription."""

from __future__ import annotations

import asyncio

from aiohttp import BodyPartReader, web

from hubproxy.api.common import authenticate, call_context, read_json
from hubproxy.api.render import respond
from hubproxy.api.state import GATEWAY, SETTINGS
from hubproxy.errors import BadRequest, PayloadTooLarge, RequestTimeout
from hubproxy.gateway import media
from hubproxy.providers.openai import audio, images

routes = web.RouteTableDef()

AUDIO_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}  # fmt: skip
_TEXT_FORMATS = ("text", "srt", "vtt")
_FIELD_LIMIT = 64 * 1024  # a text field of the form (a prompt, a language ...)


@routes.post("/v1/images/generations")
async def image_generations(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    req = images.generation_request(body)
    ctx = call_context(request, principal, body)
    return await respond(request, request.app[GATEWAY].run(ctx, media.images(req)))


@routes.post("/v1/audio/speech")
async def speech(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    req = audio.speech_request(body)
    ctx = call_context(request, principal, body)
    headers = {"Content-Type": AUDIO_TYPES[req.response_format], "Cache-Control": "no-cache"}
    return await respond(request, request.app[GATEWAY].run(ctx, media.speech(req)), sse=headers)


@routes.post("/v1/audio/transcriptions")
async def transcriptions(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    upload = await read_upload(request)
    fields = dict(upload.fields)
    ctx = call_context(request, principal, {**fields, "model": fields["model"].strip()})
    text = fields.get("response_format") in _TEXT_FORMATS
    return await respond(
        request, request.app[GATEWAY].run(ctx, media.transcription(upload)),
        content_type="text/plain" if text else "application/json",
    )  # fmt: skip


async def read_upload(request: web.Request) -> audio.Upload:
    """The multipart form of a transcription, checked: its fields (a model among them) and one
    audio file, all within the body limit (413), in the read timeout (408)."""
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the audio as multipart/form-data with a 'file' part.", param="file")
    settings = request.app[SETTINGS].server
    try:
        async with asyncio.timeout(settings.read_timeout_s):
            upload = await _read_form(request, settings.max_body_bytes)
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {settings.read_timeout_s:g} seconds."
        ) from None
    except (ValueError, AssertionError, web.RequestPayloadError) as exc:  # a malformed form
        raise BadRequest(
            f"The multipart form could not be read: {exc}.", code="invalid_body"
        ) from None
    audio.check_transcription_fields(dict(upload.fields))
    audio.check_upload(upload.content_type, upload.size, settings.max_body_bytes)
    return upload


async def _read_form(request: web.Request, limit: int) -> audio.Upload:
    reader = await request.multipart()
    fields: list[tuple[str, str]] = []
    file: tuple[bytes, str, str] | None = None
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise BadRequest("A nested multipart part is not accepted.", param="file")
        data = bytearray()
        while chunk := await part.read_chunk(65536):
            data += chunk
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"The upload is larger than the limit of {limit} bytes.")
        if part.name == "file" and part.filename is not None:
            if file is not None:
                raise BadRequest("Send one 'file'.", param="file")
            kind = part.headers.get("Content-Type", "")
            file = (bytes(data), part.filename, kind)
        elif part.filename is None and part.name:
            if len(data) > _FIELD_LIMIT:
                raise BadRequest(f"The field '{part.name}' is too long.", param=part.name)
            fields.append((part.name, data.decode("utf-8", "replace")))
    if file is None:
        raise BadRequest("Missing required parameter: 'file' (the audio to transcribe).",
                         param="file")  # fmt: skip
    return audio.Upload(tuple(fields), *file)
