"""Image and audio calls on the gateway core: their planners, to OpenAI-compatible upstreams.

Each planner is made for one checked request (providers/openai/images.py, audio.py) and
handed to `Gateway.run`. What a call consumes besides tokens travels as MediaUsage: known
before it runs (images asked for, characters to speak, the upload's size) in `Plan.media`,
which is held; what it turned out to be (images made, seconds transcribed) in `Reply.media`,
which is billed. Their replies carry zero tokens (`Usage()`), not None, so that the call is
billed. Speech is a raw stream (`Plan.raw`): its audio bytes pass through as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from hubproxy.errors import BadRequest, HubError, UpstreamError
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.core import Plan, Planner
from hubproxy.gateway.routing import Route
from hubproxy.gateway.stream import RAW_END
from hubproxy.gateway.upstream import Upstream
from hubproxy.providers.base import JSON, MediaUsage, Reply, UpstreamRequest, Usage
from hubproxy.providers.openai.audio import SpeechRequest, Upload, transcription_usage
from hubproxy.providers.openai.images import ImageRequest, images_of
from hubproxy.providers.openai.provider import OpenAIProvider, loads
from hubproxy.providers.sse import Event


def images(req: ImageRequest) -> Planner:
    """POST /images/generations: billed per image made, at the rate's "size/quality" price."""

    def plan(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
        fmt = _openai(upstream, "image generation")
        body = {**ctx.body, "model": route.model}

        def parse(raw: bytes) -> Reply:
            obj = loads(raw, "JSON")
            if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
                raise UpstreamError(
                    "The upstream answer has no data.", code="bad_upstream_response"
                )
            made = min(images_of(obj), req.n)  # never more than were asked (and held) for
            return Reply(raw, Usage(), MediaUsage(images=made, variant=req.variant))

        return _whole(ctx, fmt, body, kind="image", path="/images/generations", parse=parse,
                      media=req.usage(), params=req.params())  # fmt: skip

    return plan


def speech(req: SpeechRequest) -> Planner:
    """POST /audio/speech: the audio streams through; billed per input character."""

    def plan(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
        fmt = _openai(upstream, "speech")
        body = {**ctx.body, "model": route.model}
        return Plan(
            kind="audio",
            stream=True,
            body=ctx.body,
            request=_request(fmt, "/audio/speech", orjson.dumps(body)),
            parse=lambda raw: Reply(raw, Usage()),
            reshape=_same,
            translator=AudioThrough,
            error_event=_nothing,
            forward=ctx.forward,
            media=req.usage(),
            params={"voice": req.voice, "response_format": req.response_format,
                    "chars": len(req.input)},
            raw=True,
        )  # fmt: skip

    return plan


def transcription(upload: Upload) -> Planner:
    """POST /audio/transcriptions: the form goes upstream (its model renamed for the upstream);
    billed per second of audio when the upstream reports it, else per MB uploaded."""

    def plan(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
        fmt = _openai(upstream, "transcription")
        body, content_type = upload.encode(route.model)

        def parse(raw: bytes) -> Reply:
            return Reply(raw, Usage(), transcription_usage(raw, upload.size))

        return _whole(
            ctx, fmt, body, kind="audio", path="/audio/transcriptions", parse=parse,
            media=MediaUsage(bytes=upload.size), params={"bytes": upload.size},
            content_type=content_type,
        )  # fmt: skip

    return plan


class AudioThrough:
    """Speech's translator: the upstream's audio bytes, unchanged. Its tokens are none (the
    characters are billed), and the stream is complete when the upstream closes it."""

    __slots__ = ("finished", "prompt_tokens", "text_chars", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = Usage()
        self.prompt_tokens: int | None = None
        self.finished = False
        self.text_chars = 0

    def feed(self, event: Event) -> bytes:
        if event is RAW_END:
            self.finished = True
            return b""
        return event.raw

    def end(self) -> bytes:
        return b""


def _whole(
    ctx: CallContext,
    fmt: OpenAIProvider,
    body: JSON | bytes,
    *,
    kind: str,
    path: str,
    parse: Callable[[bytes], Reply],
    media: MediaUsage,
    params: JSON,
    content_type: str | None = None,
) -> Plan:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Plan(
        kind=kind,
        stream=False,
        body=ctx.body,
        request=_request(fmt, path, raw, content_type),
        parse=parse,
        reshape=_same,
        translator=None,
        error_event=ctx.face.error_event,
        forward=ctx.forward,
        media=media,
        params=params,
    )


def _request(
    fmt: OpenAIProvider, path: str, body: bytes, content_type: str | None = None
) -> UpstreamRequest:
    headers = dict(fmt.settings.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return UpstreamRequest(fmt.settings.base_url + path, body, headers)


def _openai(upstream: Upstream, what: str) -> OpenAIProvider:
    """Media goes to OpenAI's format only (Azure's deployments have paths of their own)."""
    fmt = upstream.format
    if type(fmt) is not OpenAIProvider:
        raise BadRequest(
            f"Provider '{upstream.entry.name}' does not serve {what}: "
            "use an OpenAI-compatible one.",
            code="unsupported_model", param="model",
        )  # fmt: skip
    return fmt


def _same(body: bytes) -> bytes:
    return body


def _nothing(err: HubError) -> bytes:
    """An audio stream cut by an error just ends: there is no way to say so in audio bytes
    (the call's record says why)."""
    return b""
