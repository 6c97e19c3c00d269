"""OpenAI's Responses API: POST /v1/responses (streamed and not), and GET and DELETE
/v1/responses/{id} on the caller's own stored responses.

A `previous_response_id` is resolved here, before the call (the only read of the database on
this path, and only when the field is there); with `store` (the default), the response and
its turn's input are written in the same commit as the call's record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from hubproxy.api.common import authenticate, call_context, read_json, require
from hubproxy.api.render import respond
from hubproxy.api.state import GATEWAY, READER, WRITER
from hubproxy.errors import BadRequest, NotFound
from hubproxy.gateway import plans
from hubproxy.gateway.context import Face
from hubproxy.gateway.record import Call
from hubproxy.providers.base import JSON, StreamTranslator, Usage
from hubproxy.providers.openai.responses import (
    ResponsesPassthrough,
    ResponsesStreamFromChat,
    input_items,
    response_from_chat,
    response_id,
)
from hubproxy.store import responses
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader

routes = web.RouteTableDef()


@routes.post("/v1/responses")
async def create(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    body = await read_json(request)
    require(body, "model", str, "a string such as 'openai/gpt-4o-mini'")
    if body.get("input") is None:
        raise BadRequest("Missing required parameter: 'input'.", param="input")
    items = input_items(body)  # a string or a list of objects, or 400
    for name in ("stream", "store"):
        if name in body and not isinstance(body[name], bool):
            raise BadRequest(f"'{name}' must be true or false.", param=name)
    history: list[Any] = []
    previous = body.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str) or not previous:
            raise BadRequest(
                "'previous_response_id' must be a response id.", param="previous_response_id"
            )
        found = await responses.history(await _reader(request), previous, principal.user_id)
        if found is None:  # unknown, pruned, deleted, or another user's: all alike
            raise BadRequest(
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = found
    keep = _keeper(principal.user_id, body, items) if body.get("store", True) else None
    ctx = call_context(request, principal, body, face(body, response_id(), keep))
    return await respond(request, request.app[GATEWAY].run(ctx, plans.responses(history)))


@routes.get("/v1/responses/{response_id}")
async def retrieve(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    rid = request.match_info["response_id"]
    stored = await responses.get(await _reader(request), rid, principal.user_id)
    if stored is None:
        raise _not_found(rid)
    return web.Response(body=stored.response, content_type="application/json")


@routes.delete("/v1/responses/{response_id}")
async def delete(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    rid = request.match_info["response_id"]
    if await responses.get(await _reader(request), rid, principal.user_id) is None:
        raise _not_found(rid)
    await request.app[WRITER].commit(responses.delete(rid, principal.user_id))
    answer = {"id": rid, "object": "response.deleted", "deleted": True}
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def _not_found(rid: str) -> NotFound:
    return NotFound(f"Response with id '{rid}' not found.", param="response_id", code="not_found")


Keeper = Callable[[Call, StreamTranslator | None, bytes | None], Sequence[Op]]


def face(body: JSON, rid: str, keep: Keeper | None) -> Face:
    """Answers as a Response: a chat upstream's are written as one (`rid` its id); a Responses
    upstream's pass through, and only `keep` (the storing) applies."""
    model = str(body["model"])
    return Face(
        name="responses",
        stream=lambda inner: ResponsesStreamFromChat(
            inner, response_id=rid, model=model, request=body
        ),
        reply=lambda raw: response_from_chat(raw, response_id=rid, model=model, request=body),
        ops=keep,
    )


def _keeper(user_id: int, body: JSON, items: list[Any]) -> Keeper:
    """The write that stores a successful call's Response with its turn's input, owned by
    the user; chained to the previous response the client named (a Responses upstream never
    saw that id: the gateway sent the history instead)."""

    def keep(call: Call, translator: StreamTranslator | None, whole: bytes | None) -> list[Op]:
        response = _final(call, translator, whole)
        if response is None:
            return []
        response["previous_response_id"] = body.get("previous_response_id")
        return [responses.put(user_id, response, items)]

    return keep


def _final(call: Call, translator: StreamTranslator | None, whole: bytes | None) -> JSON | None:
    """The finished Response object of a successful call."""
    if isinstance(translator, ResponsesStreamFromChat):
        translator.settled(call.usage or Usage(), call.credits)  # as response.completed says
        return dict(translator.final())
    if isinstance(translator, ResponsesPassthrough):
        return dict(translator.response) if translator.response is not None else None
    obj = orjson.loads(whole) if whole is not None else None
    return obj if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None


async def _reader(request: web.Request) -> Reader:
    """The reader, once every response this server has answered is committed: a turn that
    continues the one just answered must find it (its store is journaled, then committed in
    a group). The flush commits what is queued: in the caller on SQLite when the writer is
    idle, with the writer's next batch on PostgreSQL."""
    await request.app[WRITER].flush()
    return request.app[READER]
