"""The Gateway: one model call, from a CallContext to the parts of its answer. No HTTP.

Each entry point (chat, messages, embeddings) returns one async generator that does the whole
call: route, plan the upstream request, admit (inside a Flight), send, then yield the answer's
parts. Everything that can go wrong before the first part is raised as a HubError, for the
face to render with a status; after a stream's Head, an error travels as the face's error
event and the stream ends. The face must close the generator (`contextlib.aclosing`): a client
that leaves closes it, which cancels the upstream request and records the call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import orjson
import structlog

from hubproxy.catalog.credentials import CredentialPool
from hubproxy.catalog.health import Health
from hubproxy.catalog.snapshot import Catalog
from hubproxy.errors import HubError
from hubproxy.gateway.context import CallContext, End, Head, Part, Whole
from hubproxy.gateway.flight import Books, Flight
from hubproxy.gateway.routing import Route
from hubproxy.gateway.stream import RawChunks, step, tail
from hubproxy.gateway.transport import NotSent, Response
from hubproxy.gateway.upstream import Upstream, Upstreams
from hubproxy.providers import anthropic
from hubproxy.providers.base import (
    JSON,
    MediaUsage,
    Reply,
    StreamTranslator,
    UpstreamRequest,
    Usage,
)  # fmt: skip
from hubproxy.providers.sse import Decoder

# Upstream answer headers worth passing on; everything else (hop-by-hop, cookies, the
# provider's account and rate-limit details) stays behind.
_PASS_HEADERS = ("openai-processing-ms",)

log = structlog.get_logger("hubproxy.gateway")


@dataclass(slots=True)  # built per request: a frozen init costs ~1 µs more
class Plan:
    """How one call goes to one upstream and how its answer comes back."""

    kind: str  # 'chat' | 'embedding': what the rate and the record say
    stream: bool
    body: JSON  # the request whose tokens are estimated and held for
    request: UpstreamRequest
    parse: Callable[[bytes], Reply]  # a whole answer → the client's bytes and the usage
    reshape: Callable[[bytes], bytes]  # those bytes → the face's shape
    translator: Callable[[], StreamTranslator] | None  # for a stream
    error_event: Callable[[HubError], bytes]
    forward: Mapping[str, str]  # headers sent upstream beside the format's own
    media: MediaUsage | None = None  # an image or audio call's consumption known before it runs
    params: JSON | None = None  # the parameters that set the price, for the record
    raw: bool = False  # the answer is bytes, not SSE (speech): chunks go to the translator as is


Planner = Callable[[CallContext, Route, Upstream], Plan]


class CatalogSource(Protocol):
    """Where the core reads the model catalogue (hubproxy.catalog.live.LiveCatalog)."""

    current: Catalog
    health: Health


class Gateway:
    def __init__(self, catalog: CatalogSource, upstreams: Upstreams, books: Books) -> None:
        self.catalog = catalog
        self.upstreams = upstreams
        self.books = books

    def chat(self, ctx: CallContext) -> AsyncGenerator[Part, None]:
        """OpenAI's chat completions (the hub's own format), to any upstream."""
        return self._run(ctx, _chat)

    def messages(self, ctx: CallContext) -> AsyncGenerator[Part, None]:
        """Anthropic's Messages API. To an Anthropic upstream the bytes pass through, with the
        usage tap, whatever Anthropic-only features they use (and the client's opt-ins go
        along); to any other, the request becomes OpenAI's and the face re-shapes the answer."""
        return self._run(ctx, _messages)

    def embeddings(self, ctx: CallContext) -> AsyncGenerator[Part, None]:
        return self._run(ctx, _embeddings)

    def run(self, ctx: CallContext, planner: Planner) -> AsyncGenerator[Part, None]:
        """Any other kind of call (images, audio, AIGNE's formats): `planner` says what goes
        upstream and how the answer comes back."""
        return self._run(ctx, planner)

    async def _run(self, ctx: CallContext, planner: Planner) -> AsyncGenerator[Part, None]:
        # One snapshot for the whole call: a provider removed meanwhile still finishes it.
        cat = self.catalog.current
        routes = cat.resolve(ctx.body.get("model"))
        route = routes[0]
        upstream = self.upstreams.get(cat.providers[route.provider])
        plan = planner(ctx, route, upstream)
        async with Flight(
            self.books, ctx, route=route, kind=plan.kind, stream=plan.stream, body=plan.body,
            media=plan.media, params=plan.params,
        ) as flight:  # fmt: skip
            while True:  # the targets in turn, until one answers (nothing has been sent back)
                started = time.perf_counter()
                try:
                    resp = await _send(flight, upstream, cat.pool(route.provider), plan)
                except HubError as err:
                    self._observe(route, started, err.message)
                    if flight.call.attempts >= len(routes) or not _worth_another(err):
                        raise
                    log.warning(
                        "fallback", call=flight.call.id, failed=str(route), error=err.message,
                        next=str(routes[flight.call.attempts]),
                    )  # fmt: skip
                    route = routes[flight.call.attempts]
                    upstream = self.upstreams.get(cat.providers[route.provider])
                    plan = planner(ctx, route, upstream)
                    await flight.retarget(route, plan.body)
                    continue
                self._observe(route, started, None)
                break
            try:
                if not plan.stream:
                    yield await _whole(flight, resp, plan)
                    return
                assert plan.translator is not None
                translator = flight.translator = plan.translator()
                yield Head({**_passed(resp.headers), **flight.headers()})
                call, decoder = flight.call, RawChunks() if plan.raw else Decoder()
                # Same format both ways: whole plain events pass as they came, undecoded.
                whole_events = None if plan.raw else getattr(translator, "feed_chunk", None)
                while chunk := await resp.readany():
                    if call.ttfb_ms is None:
                        call.first_byte()
                    data, error = step(decoder, translator, chunk, whole_events)
                    if data:
                        yield data
                    if error is not None:
                        raise error
                    if translator.finished:
                        break
                else:
                    data, error = tail(decoder, translator)
                    if data:
                        yield data
                    if error is not None:
                        raise error
            except Exception as exc:
                if not plan.stream or flight.translator is None:
                    raise
                # After the first byte, an error can only travel as an event in the stream.
                shown = exc if isinstance(exc, HubError) else _internal(exc)
                flight.call.upstream_status = flight.call.upstream_status or shown.status
                await flight.fail(exc)
                render = getattr(flight.translator, "error_event", plan.error_event)
                yield End(render(shown))
                return
            finally:
                resp.close()
            await flight.succeed()
            settled = getattr(translator, "settled", None)
            if settled is not None:  # a format whose last event reports the usage and debit
                settled(flight.call.usage or Usage(), flight.call.credits)
            yield End(translator.end())  # the held terminal bytes, released after the commit

    def _observe(self, route: Route, started: float, error: str | None) -> None:
        """A try's outcome, for the catalogue's passive availability of the model."""
        latency_ms = (time.perf_counter() - started) * 1000
        self.catalog.health.observe(str(route), error is None, latency_ms, error)


def _worth_another(err: HubError) -> bool:
    """Whether the next target of a fallback chain may do better: the upstream failed (5xx,
    timeout, unreachable, every credential refused) or rate-limited every credential (429).
    A 4xx caused by the request itself would fail anywhere."""
    return err.status >= 500 or err.status == 429


async def _send(flight: Flight, upstream: Upstream, pool: CredentialPool, plan: Plan) -> Response:
    """Send upstream; an error answer is read, closed and raised as a HubError."""
    call = flight.call
    call.sent = True  # from here the upstream may be working on it, whatever happens next
    try:
        resp = await upstream.send(pool, plan.request, plan.forward)
    except NotSent:
        call.sent = False
        raise
    call.upstream_status = resp.status
    if resp.status < 400:
        return resp
    try:
        path = urlsplit(plan.request.url).path
        err = upstream.format.error(resp.status, await resp.read(), path=path)
    finally:
        resp.close()
    if "Retry-After" in resp.headers:
        err.headers["Retry-After"] = resp.headers["Retry-After"]
    raise err


async def _whole(flight: Flight, resp: Response, plan: Plan) -> Whole:
    """A whole answer, released once its call is recorded."""
    call = flight.call
    call.first_byte()
    reply = plan.parse(await resp.read())
    out = plan.reshape(reply.body)
    call.usage = reply.usage
    if reply.media is not None:
        flight.media = reply.media  # what it consumed, known now (images made, seconds)
    if flight.count("success"):
        out = _with_usage(out, call.usage)  # tell the client what the log will say
    flight.whole = out
    await flight.succeed()
    return Whole(out, {**_passed(resp.headers), **flight.headers()})


def _chat(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
    return _chat_plan(ctx, route, upstream, ctx.body)


def _chat_plan(ctx: CallContext, route: Route, upstream: Upstream, body: JSON) -> Plan:
    fmt, face = upstream.format, ctx.face
    stream = body.get("stream") is True
    return Plan(
        kind="chat",
        stream=stream,
        body=body,
        request=fmt.chat_request(body, route.model, stream),
        parse=fmt.chat_reply,
        reshape=face.reply,
        translator=(lambda: face.stream(fmt.chat_stream(body))) if stream else None,
        error_event=face.error_event,
        forward=ctx.forward,
    )


def _messages(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
    fmt, body = upstream.format, ctx.body
    if not isinstance(fmt, anthropic.AnthropicProvider):
        openai_body = anthropic.openai_request_from_messages(body)  # validates, or 400
        return _chat_plan(ctx, route, upstream, openai_body)
    stream = body.get("stream") is True
    return Plan(
        kind="chat",
        stream=stream,
        body=body,
        request=fmt.messages_request(body, route.model),
        parse=fmt.messages_reply,
        reshape=_same,
        translator=fmt.passthrough_stream if stream else None,
        error_event=ctx.face.error_event,
        forward={**ctx.forward, **ctx.client_headers},
    )


def _embeddings(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
    fmt = upstream.format
    return Plan(
        kind="embedding",
        stream=False,
        body=ctx.body,
        request=fmt.embeddings_request(ctx.body, route.model),
        parse=fmt.embeddings_reply,
        reshape=_same,
        translator=None,
        error_event=ctx.face.error_event,
        forward=ctx.forward,
    )


def _same(body: bytes) -> bytes:
    return body


def _internal(exc: Exception) -> HubError:
    log.error("stream_failed", error=type(exc).__name__, exc_info=exc)
    return HubError("Internal error; see the server log.")


def _with_usage(body: bytes, usage: Usage | None) -> bytes:
    """A whole answer whose upstream counted nothing, given the estimate in the client's own
    shape (OpenAI's prompt/completion/total, or Anthropic's input/output)."""
    obj = orjson.loads(body)
    if usage is None or not isinstance(obj, dict) or not isinstance(obj.get("usage"), dict):
        return body
    if "input_tokens" in obj["usage"]:  # Anthropic's, or a Responses object's (with a total)
        obj["usage"].update(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
        if "total_tokens" in obj["usage"]:
            obj["usage"]["total_tokens"] = usage.total_tokens
    else:
        obj["usage"].update(
            prompt_tokens=usage.prompt_tokens, total_tokens=usage.total_tokens,
            **({"completion_tokens": usage.completion_tokens}
               if "completion_tokens" in obj["usage"] else {}),
        )  # fmt: skip
    return orjson.dumps(obj)


def _passed(headers: Mapping[str, str]) -> dict[str, str]:
    out = {name: headers[name] for name in _PASS_HEADERS if name in headers}
    if "x-request-id" in headers:
        out["x-upstream-request-id"] = headers["x-request-id"]
    return out
