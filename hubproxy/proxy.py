"""One model call end to end: route, start the record, send, relay or reply, finish the record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from hubproxy import tokens
from hubproxy.auth import Principal
from hubproxy.calls import Call
from hubproxy.context import CALL, REQUEST_ID, TRACE_HEADERS, TRACE_ID
from hubproxy.errors import HubError
from hubproxy.providers.base import JSON, Provider, Reply, StreamTranslator, UpstreamRequest, Usage
from hubproxy.routing import Route, Router
from hubproxy.store.writer import Writer
from hubproxy.streaming import pipeline, sse
from hubproxy.upstream import Response, Upstream


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


class Gateway:
    def __init__(self, router: Router, upstream: Upstream, writer: Writer) -> None:
        self.router = router
        self.upstream = upstream
        self.writer = writer

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
        call = self._begin(request, principal, route, "chat", stream)
        resp = await self._send(request, call, route, upstream_request, provider, body)
        if stream:
            translator = client.stream(provider.chat_stream(body))
            return await pipeline.relay(
                request, resp, translator, call,
                lambda status, error: self._record(call, body, translator, status, error),
                client.error_event, _passed(resp.headers),
            )  # fmt: skip
        return await self._reply(call, body, resp, provider.chat_reply, client.reply)

    async def embeddings(
        self, request: web.Request, principal: Principal, body: JSON
    ) -> web.StreamResponse:
        route, provider = self._route(body)
        upstream_request = provider.embeddings_request(body, route.model)
        call = self._begin(request, principal, route, "embedding", False)
        resp = await self._send(request, call, route, upstream_request, provider, body)
        return await self._reply(call, body, resp, provider.embeddings_reply, OPENAI.reply)

    def _route(self, body: JSON) -> tuple[Route, Provider]:
        route = self.router.resolve(body.get("model"))
        return route, self.upstream.providers[route.provider]

    def _begin(
        self, request: web.Request, principal: Principal, route: Route, kind: str, stream: bool
    ) -> Call:
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
        self.writer.submit(call.start_op())
        return call

    async def _send(
        self,
        request: web.Request,
        call: Call,
        route: Route,
        upstream_request: UpstreamRequest,
        provider: Provider,
        body: JSON,
    ) -> Response:
        """Send upstream; an error answer is read, recorded and raised as a HubError."""
        try:
            resp = await self.upstream.send(
                route.provider, upstream_request, request.get(TRACE_HEADERS)
            )
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
        except HubError as err:
            await self._record(call, body, None, "failed", err.message)
            raise
        except asyncio.CancelledError:
            self._record(call, body, None, "failed", pipeline.CLIENT_GONE)
            raise

    async def _reply(
        self,
        call: Call,
        body: JSON,
        resp: Response,
        parse: Callable[[bytes], Reply],
        reshape: Callable[[bytes], bytes],
    ) -> web.Response:
        try:
            call.first_byte()
            reply = parse(await resp.read())
            out = reshape(reply.body)
        except HubError as err:
            await self._record(call, body, None, "failed", err.message)
            raise
        except asyncio.CancelledError:
            self._record(call, body, None, "failed", pipeline.CLIENT_GONE)
            raise
        finally:
            resp.close()
        call.usage = reply.usage
        await self._record(call, body, None, "success", None)
        return web.Response(
            body=out, content_type="application/json", headers=_passed(resp.headers)
        )

    def _record(
        self,
        call: Call,
        body: JSON,
        translator: StreamTranslator | None,
        status: str,
        error: str | None,
    ) -> asyncio.Future[None]:
        """Finish the call: the provider's usage if it gave one, else an estimate (marked)."""
        if translator is not None and translator.usage is not None:
            call.usage = translator.usage
        if call.usage is None and (status == "success" or call.ttfb_ms is not None):
            # Tokens were consumed upstream: bill an estimate rather than nothing.
            chars = translator.text_chars if translator is not None else 0
            call.usage = Usage(tokens.prompt(body), tokens.from_chars(chars))
            call.usage_estimated = True
        return self.writer.commit(call.finish(status, error=error))


def _passed(headers: Mapping[str, str]) -> dict[str, str]:
    out = {name: headers[name] for name in _PASS_HEADERS if name in headers}
    if "x-request-id" in headers:
        out["x-upstream-request-id"] = headers["x-request-id"]
    return out
