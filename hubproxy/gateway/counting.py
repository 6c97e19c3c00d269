"""Counting a Messages request's input tokens (Anthropic's count_tokens): free, and never a
recorded call, so it runs beside the Flight, not through it.

To an Anthropic upstream the request goes as it is (the client's opt-ins along) and its
answer comes back unchanged; to any other, the answer is the gateway's own estimate (the one
its holds use), which the face marks as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from hubproxy.billing import tokens
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.core import Gateway
from hubproxy.providers import anthropic


@dataclass(frozen=True, slots=True)
class Count:
    body: bytes  # {"input_tokens": N}, in Anthropic's shape
    estimated: bool  # the gateway's estimate, not the provider's count


async def count_tokens(gateway: Gateway, ctx: CallContext) -> Count:
    cat = gateway.catalog.current
    route = cat.resolve(ctx.body.get("model"))[0]
    upstream = gateway.upstreams.get(cat.providers[route.provider])
    fmt = upstream.format
    if not isinstance(fmt, anthropic.AnthropicProvider):
        # Checked as /v1/messages checks it (it has no max_tokens: any will do), then
        # estimated as a hold for it would be.
        chat = anthropic.openai_request_from_messages({**ctx.body, "max_tokens": 1})
        return Count(orjson.dumps({"input_tokens": tokens.prompt(chat)}), estimated=True)
    request = fmt.count_tokens_request(ctx.body, route.model)
    pool = cat.pool(route.provider)
    resp = await upstream.send(pool, request, {**ctx.forward, **ctx.client_headers})
    try:
        raw = await resp.read()
    finally:
        resp.close()
    if resp.status >= 400:
        raise fmt.error(resp.status, raw, path=urlsplit(request.url).path)
    fmt.count_tokens_reply(raw)  # an answer without a count is the upstream's fault: 502
    return Count(raw, estimated=False)
