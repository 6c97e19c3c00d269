"""Planners of the calls beyond chat, messages and embeddings: OpenAI's Responses API and its
legacy text completions, each a core Plan (what goes upstream, how the answer comes back).

A Responses call to an upstream that serves the Responses API itself (OpenAI) passes through
as bytes, its earlier turns put into `input`; to any other it becomes the gateway's chat
call, and the face (api/responses.py) writes the answer as a Response. Legacy completions
pass through to an upstream that has them, and are a 400 for any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hubproxy.errors import BadRequest
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.core import Plan, Planner, _chat_plan
from hubproxy.gateway.routing import Route
from hubproxy.gateway.upstream import Upstream
from hubproxy.providers.base import JSON, Reply
from hubproxy.providers.openai import OpenAIProvider
from hubproxy.providers.openai.responses import (
    ResponsesPassthrough,
    chat_request_from_responses,
    continued,
    usage_of_response,
    with_history,
)


def responses(history: Sequence[JSON]) -> Planner:
    """The planner of a /v1/responses call whose earlier turns (from previous_response_id,
    oldest first) are `history`."""

    def plan(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
        fmt = upstream.format
        if isinstance(fmt, OpenAIProvider) and fmt.speaks_responses:
            return _responses_passthrough(ctx, route, fmt, history)
        chat = chat_request_from_responses(ctx.body, history)  # validates, or 400
        return _chat_plan(ctx, route, upstream, chat)

    return plan


def _responses_passthrough(
    ctx: CallContext, route: Route, fmt: OpenAIProvider, history: Sequence[JSON]
) -> Plan:
    body = with_history(ctx.body, history)
    previous = ctx.body.get("previous_response_id")  # checked by the face: a str, or None
    stream = body.get("stream") is True
    return Plan(
        kind="chat",
        stream=stream,
        body=_estimated(
            [body.get("instructions"), body.get("input"), body.get("tools")],
            body.get("max_output_tokens"),
        ),
        request=fmt.responses_request(body, route.model),
        parse=_response_reply,
        reshape=lambda raw: continued(raw, previous),
        translator=(lambda: ResponsesPassthrough(previous)) if stream else None,
        error_event=ctx.face.error_event,
        forward=ctx.forward,
    )


def completions(ctx: CallContext, route: Route, upstream: Upstream) -> Plan:
    """Legacy text completions (/v1/completions), passed through with the usage tap."""
    fmt, body = upstream.format, ctx.body
    if not (isinstance(fmt, OpenAIProvider) and fmt.speaks_completions):
        raise BadRequest(
            f"The model '{body.get('model')}' is not served by legacy text completions; "
            "call /v1/chat/completions instead.",
            param="model",
            code="unsupported_endpoint",
        )
    stream = body.get("stream") is True
    estimate = _estimated(body.get("prompt"), body.get("max_tokens"))
    for name in ("n", "best_of"):  # each choice generated is billed: the hold covers them
        if name in body:
            estimate[name] = body[name]
    return Plan(
        kind="chat",
        stream=stream,
        body=estimate,
        request=fmt.completions_request(body, route.model, stream),
        parse=fmt.completions_reply,
        reshape=_same,
        translator=(lambda: fmt.chat_stream(body)) if stream else None,
        error_event=ctx.face.error_event,
        forward=ctx.forward,
    )


def _estimated(text: Any, max_tokens: Any) -> JSON:
    """What the hold and a cut stream's estimate read for a request that is not a chat
    request: its text as `input` and its output limit."""
    out: JSON = {"input": text}
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    return out


def _response_reply(raw: bytes) -> Reply:
    return Reply(raw, usage_of_response(raw))


def _same(body: bytes) -> bytes:
    return body
