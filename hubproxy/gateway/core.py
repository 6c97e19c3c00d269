"""One model call end to end: route, admit, send, relay or reply, then record and settle once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from aiohttp import web

from hubproxy.api.context import CALL, REQUEST_ID, TRACE_HEADERS, TRACE_ID
from hubproxy.billing import tokens
from hubproxy.billing.credits import Credits, Hold
from hubproxy.errors import HubError
from hubproxy.gateway import stream as pipeline
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route, Router
from hubproxy.gateway.transport import Response, Upstream
from hubproxy.providers import anthropic, sse
from hubproxy.providers.base import JSON, Provider, Reply, StreamTranslator, UpstreamRequest, Usage
from hubproxy.store import usage
from hubproxy.store.writer import Op, Writer


@dataclass(frozen=True, slots=True)
class ClientFormat:
    """How answers are shaped for the client: OpenAI's by default; the Anthropic-native
    endpoint brings its own."""

    stream: Callable[[StreamTranslator], StreamTranslator] = lambda t: t
    reply: Callable[[bytes], bytes] = lambda b: b
    error_event: Callable[[HubError], bytes] = lambda e: sse.encode(e.to_json())


OPENAI = ClientFormat()
# Upstream answer headers worth passing on; everything else (hop-by-hop, cookies, the
# provider's account and rate-limit details) stays behind.
_PASS_HEADERS = ("openai-processing-ms",)


@dataclass(slots=True)
class Flight:
    """A call in flight and what settling it needs."""

    call: Call
    body: JSON
    hold: Hold | None
    translator: StreamTranslator | None = None


class Gateway:
    def __init__(
        self,
        router: Router,
        upstream: Upstream,
        writer: Writer,
        credits: Credits,
        rollups: usage.Rollups,
    ) -> None:
        self.router = router
        self.upstream = upstream
        self.writer = writer
        self.credits = credits
        self.rollups = rollups

    async def chat(
        self,
        request: web.Request,
        principal: Principal,
        body: JSON,
        client: ClientFormat = OPENAI,
    ) -> web.StreamResponse:
        route, provider = self._route(body)
        stream = body.get("stream") is True
        upstream_request = provider.chat_request(body, route.model, stream)
        flight = self._begin(request, principal, route, "chat", stream, body)
        resp = await self._send(request, flight, route, upstream_request, provider)
        if stream:
            translator = client.stream(provider.chat_stream(body))
            return await self._relay(request, flight, resp, translator, client.error_event)
        return await self._reply(flight, resp, provider.chat_reply, client.reply)

    async def messages(
        self, request: web.Request, principal: Principal, body: JSON
    ) -> web.StreamResponse:
        """Anthropic's Messages API. To an Anthropic upstream the bytes pass through, with the
        usage tap, whatever Anthropic-only features they use (and the client's anthropic-beta
        opt-ins go along); to any other, the request becomes OpenAI's and the answer comes
        back re-shaped."""
        route, provider = self._route(body)
        if not isinstance(provider, anthropic.AnthropicProvider):
            openai_body = anthropic.openai_request_from_messages(body)  # validates, or 400
            return await self.chat(request, principal, openai_body, _anthropic_client(body))
        stream = body.get("stream") is True
        upstream_request = provider.messages_request(body, route.model)
        flight = self._begin(request, principal, route, "chat", stream, body)
        extra = {k: v for k, v in request.headers.items() if k.lower() == "anthropic-beta"}
        resp = await self._send(request, flight, route, upstream_request, provider, extra)
        if stream:
            translator = provider.passthrough_stream()
            return await self._relay(
                request, flight, resp, translator, anthropic.anthropic_error_event
            )
        return await self._reply(flight, resp, provider.messages_reply, OPENAI.reply)

    async def embeddings(
        self, request: web.Request, principal: Principal, body: JSON
    ) -> web.StreamResponse:
        route, provider = self._route(body)
        upstream_request = provider.embeddings_request(body, route.model)
        flight = self._begin(request, principal, route, "embedding", False, body)
        resp = await self._send(request, flight, route, upstream_request, provider)
        return await self._reply(flight, resp, provider.embeddings_reply, OPENAI.reply)

    def _route(self, body: JSON) -> tuple[Route, Provider]:
        route = self.router.resolve(body.get("model"))
        return route, self.upstream.providers[route.provider]

    def _begin(
        self,
        request: web.Request,
        principal: Principal,
        route: Route,
        kind: str,
        stream: bool,
        body: JSON,
    ) -> Flight:
        """Admit (hold credits, or refuse with 402) and start the call's record. From here on
        every path ends in _record, which settles the hold exactly once."""
        hold = self.credits.admit(principal.user_id, route.provider, route.model, kind, body)
        call = Call.begin(
            request_id=request[REQUEST_ID],
            user_id=principal.user_id,
            api_key_id=principal.key_id,
            provider=route.provider,
            model=route.model,
            type=kind,
            stream=stream,
            trace_id=request.get(TRACE_ID),
        )
        request[CALL] = call
        self.writer.submit(call.start_op(), key=call.id)
        return Flight(call, body, hold)

    async def _send(
        self,
        request: web.Request,
        flight: Flight,
        route: Route,
        upstream_request: UpstreamRequest,
        provider: Provider,
        client_headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send upstream; an error answer is read, recorded and raised as a HubError."""
        call = flight.call
        extra = {**request.get(TRACE_HEADERS, {}), **(client_headers or {})}
        try:
            resp = await self.upstream.send(route.provider, upstream_request, extra)
            call.upstream_status = resp.status
            if resp.status < 400:
                return resp
            try:
                err = provider.error(resp.status, await resp.read())
            finally:
                resp.close()
            if "Retry-After" in resp.headers:
                err.headers["Retry-After"] = resp.headers["Retry-After"]
            raise err
        except BaseException as exc:
            await self._failed(flight, exc)
            raise

    async def _relay(
        self,
        request: web.Request,
        flight: Flight,
        resp: Response,
        translator: StreamTranslator,
        error_event: Callable[[HubError], bytes],
    ) -> web.StreamResponse:
        flight.translator = translator
        return await pipeline.relay(
            request, resp, translator, flight.call,
            lambda status, error: self._record(flight, status, error),
            error_event, _passed(resp.headers),
        )  # fmt: skip

    async def _reply(
        self,
        flight: Flight,
        resp: Response,
        parse: Callable[[bytes], Reply],
        reshape: Callable[[bytes], bytes],
    ) -> web.Response:
        call = flight.call
        try:
            call.first_byte()
            reply = parse(await resp.read())
            out = reshape(reply.body)
        except BaseException as exc:
            await self._failed(flight, exc)
            raise
        finally:
            resp.close()
        call.usage = reply.usage
        if self._count(flight, "success"):
            out = _with_usage(out, call.usage)  # tell the client what the log will say
        await self._record(flight, "success", None)
        return web.Response(
            body=out, content_type="application/json", headers=_passed(resp.headers)
        )

    async def _failed(self, flight: Flight, exc: BaseException) -> None:
        """Record a call that failed, whatever broke it, so its hold is always settled. A
        client that left is recorded without waiting: its handler is being cancelled."""
        done = self._record(flight, "failed", pipeline.failure(exc))
        if not isinstance(exc, asyncio.CancelledError):
            await done

    def _count(self, flight: Flight, status: str) -> bool:
        """Settle the call's usage: the provider's own if it gave one, else, when tokens were
        consumed upstream, an estimate rather than nothing. True if it is an estimate."""
        call, translator = flight.call, flight.translator
        if translator is not None and translator.usage is not None:
            call.usage = translator.usage
        if call.usage is None and (status == "success" or call.ttfb_ms is not None):
            chars = translator.text_chars if translator is not None else 0
            call.usage = Usage(tokens.prompt(flight.body), tokens.from_chars(chars))
            call.usage_estimated = True
        return call.usage_estimated

    def _record(self, flight: Flight, status: str, error: str | None) -> asyncio.Future[None]:
        """Finish the call and settle it, as one unit of writes: the row and the debit (which
        is also the meter's usage event) commit together or not at all."""
        call = flight.call
        self._count(flight, status)
        ops: list[Op] = []
        if flight.hold is not None:
            call.credits, ops = self.credits.settle(flight.hold, call.id, call.usage)
            if flight.hold.images:  # the parameters that set the price, for the record
                call.params = orjson.dumps({"images": flight.hold.images}).decode()
        finish = call.finish(status, error=error)
        u = call.usage or Usage()
        self.rollups.add(
            created_at=call.created_at, user_id=call.user_id or 0,
            api_key_id=call.api_key_id or 0, provider=call.provider, model=call.model,
            failed=status == "failed", prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, credits=call.credits,
            duration_ms=call.duration_ms or 0, ttfb_ms=call.ttfb_ms,
        )  # fmt: skip
        # The finish is the whole row: a start still queued is dropped, not written first.
        return self.writer.commit(finish, *ops, replaces=call.id)


def _anthropic_client(body: JSON) -> ClientFormat:
    """Answers from a non-Anthropic upstream, re-shaped for an Anthropic-format client."""
    model = str(body["model"])
    return ClientFormat(
        stream=lambda inner: anthropic.MessagesStreamFromOpenAI(inner, model=model),
        reply=lambda raw: anthropic.messages_reply_from_openai(raw, model),
        error_event=anthropic.anthropic_error_event,
    )


def _with_usage(body: bytes, usage: Usage | None) -> bytes:
    """A whole answer whose upstream counted nothing, given the estimate in the client's own
    shape (OpenAI's prompt/completion/total, or Anthropic's input/output)."""
    obj = orjson.loads(body)
    if usage is None or not isinstance(obj, dict) or not isinstance(obj.get("usage"), dict):
        return body
    if "input_tokens" in obj["usage"]:
        obj["usage"].update(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
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
