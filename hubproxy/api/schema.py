"""The /api route registry: each route declares its caller, query, body and answers once; from
that one declaration it is registered with aiohttp, what a caller sends is decoded and checked,
and the OpenAPI document is written (hubproxy.api.openapi). See docs/api-routes.md.

A handler names what it needs by parameter: `caller` (the authenticated Principal), `query`
(a msgspec Struct of query parameters) and `body` (a Struct; `Struct | None` when the body is
optional). Their annotations are the schema: the decoder and the document read the same types.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from hubproxy.api.common import admin, authenticate, read_json
from hubproxy.errors import BadRequest, Unprocessable
from hubproxy.gateway.auth import Principal

Handler = Callable[..., Awaitable[web.StreamResponse]]
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body or query: unknown fields are refused (422), as a typo must not pass."""

    @classmethod
    def allowed(cls, sent: dict[str, Any]) -> set[str]:
        """The fields a body may carry; a body of several forms narrows it by what was sent."""
        return {f.encode_name for f in msgspec.structs.fields(cls)}


class Answer(msgspec.Struct, kw_only=True):
    """A response shape: it documents the answer (new fields may appear in later versions)."""


class ErrorBody(Answer):
    message: str
    type: str
    param: str | None
    code: str | None


class Error(Answer):
    """OpenAI's error shape, which every /api error takes."""

    error: ErrorBody


def says(error: str, description: str = "", **constraints: Any) -> msgspec.Meta:
    """A field's constraints and the error a caller gets when a value breaks them; `error` may
    use {param} (where in the body) and {value!r} (what was sent)."""
    return msgspec.Meta(description=description or None, extra={"error": error}, **constraints)


@dataclass(frozen=True)
class Operation:
    """One route as declared: what it takes and answers."""

    method: str
    path: str
    handler: Handler
    summary: str
    description: str
    admin: bool
    ok: Any
    errors: tuple[int, ...]
    csv: bool
    query: type[Struct] | None = None
    body: type[Struct] | None = None
    body_required: bool = True
    wants_caller: bool = False


@dataclass
class Api:
    """A table of /api routes (one per module, like web.RouteTableDef) with their schemas."""

    operations: list[Operation] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        ok: Any,
        admin: bool = False,
        errors: tuple[int, ...] = (),
        csv: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            hints = typing.get_type_hints(handler)
            names = list(inspect.signature(handler).parameters)[1:]
            unknown = set(names) - {"caller", "query", "body"}
            if unknown:
                raise TypeError(f"{handler.__name__}: unknown parameters {sorted(unknown)}")
            body, required = _optional(hints.get("body")) if "body" in names else (None, True)
            doc = inspect.getdoc(handler) or ""
            summary, _, rest = doc.partition("\n")
            self.operations.append(
                Operation(
                    method=method, path=path, handler=handler, summary=summary.strip(),
                    description=rest.strip(), admin=admin, ok=ok, errors=errors, csv=csv,
                    query=hints.get("query") if "query" in names else None,
                    body=body, body_required=required, wants_caller="caller" in names,
                )
            )  # fmt: skip
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def install(self, app: web.Application) -> None:
        """Add each route to the app, and to the operations its document lists."""
        listed = app.setdefault(OPERATIONS, [])
        for op in self.operations:
            app.router.add_route(op.method, op.path, endpoint(op))
            listed.append(op)


OPERATIONS = web.AppKey("api_operations", list[Operation])


def _optional(hint: Any) -> tuple[type[Struct] | None, bool]:
    """(the body type, whether a body is required) of a `body` annotation."""
    if isinstance(hint, types.UnionType) and type(None) in hint.__args__:
        rest = [a for a in hint.__args__ if a is not type(None)]
        return rest[0], False
    return hint, True


def endpoint(op: Operation) -> Handler:
    """The aiohttp handler: authenticate (a member asking for an admin route gets a 404, and
    nothing they sent is read), then the query and the body, then `op.handler`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        caller: Principal = await (admin(request) if op.admin else authenticate(request))
        kwargs: dict[str, Any] = {}
        query = decode_query(request, op.query)
        if op.query is not None:
            kwargs["query"] = query
        if op.body is not None:
            kwargs["body"] = await decode_body(request, op.body, required=op.body_required)
        if op.wants_caller:
            kwargs["caller"] = caller
        return await op.handler(request, **kwargs)

    handle.__name__ = op.handler.__name__
    return handle


def decode_query(request: web.Request, kind: type[Struct] | None) -> Struct | None:
    """The query as `kind`; a parameter the route does not take is refused, since a typo must
    not widen a filter."""
    allowed = {} if kind is None else {f.encode_name: f for f in msgspec.structs.fields(kind)}
    for name in request.query:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise BadRequest(f"Unknown query parameter '{name}'; this takes: {known}.", param=name)
    if kind is None:
        return None
    values = {name: request.query[name] for name in request.query}  # the first of each
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise refusal(exc, kind, values) from None


async def decode_body(request: web.Request, kind: type[Struct], *, required: bool) -> Any:
    """The JSON body as `kind` (None if optional and absent)."""
    if not required and not request.can_read_body:
        return None
    body = await read_json(request)
    allowed = kind.allowed(body)
    for name in body:  # before any value is looked at, as each field's own check would be
        if name not in allowed:
            raise _not_allowed(name, allowed)
    try:
        return msgspec.convert(body, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise refusal(exc, kind, body) from None


def _not_allowed(param: str, allowed: set[str]) -> Unprocessable:
    return Unprocessable(
        f"'{param}' cannot be set here; allowed: {', '.join(sorted(allowed))}.",
        code="field_not_allowed",
        param=param,
    )


def refusal(exc: msgspec.ValidationError, kind: Any, sent: Any) -> BadRequest | Unprocessable:
    """msgspec's complaint as the API's error: `param` names the field (rates[0].model), and
    the message is the field's own (see `says`) where it declares one."""
    found = _AT.match(str(exc))
    assert found is not None  # the pattern matches any text
    what, path = found["what"], found["path"] or ""
    if unknown := _UNKNOWN.match(what):
        where = _param(path)
        allowed = {f.encode_name for f in msgspec.structs.fields(_type_at(kind, path))}
        return _not_allowed(f"{where}.{unknown['name']}" if where else unknown["name"], allowed)
    if missing := _MISSING.match(what):
        path = f"{path}.{missing['name']}"
    param = _param(path)
    message = _message_at(kind, path)
    if message is None:
        if missing:
            return BadRequest(f"Missing required parameter: '{param}'.", param=param)
        return BadRequest(f"'{param}': {what[0].lower()}{what[1:]}.", param=param)
    value = None if missing else _value_at(sent, path)
    return BadRequest(message.format(param=param, value=value), param=param)


def _param(path: str) -> str:
    return path.removeprefix(".")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _SEGMENT.findall(path)]


def _value_at(sent: Any, path: str) -> Any:
    for step in _steps(path):
        try:
            sent = sent[step]
        except (KeyError, IndexError, TypeError):
            return None
    return sent


def _unwrap(hint: Any) -> tuple[Any, list[msgspec.Meta]]:
    """A type without Annotated, Optional and list wrappers, and the Meta found on the way."""
    metas: list[msgspec.Meta] = []
    while True:
        if typing.get_origin(hint) is typing.Annotated:
            base, *extra = typing.get_args(hint)
            metas += [m for m in extra if isinstance(m, msgspec.Meta)]
            hint = base
        elif isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a not in (type(None), msgspec.UnsetType)]
            if len(args) != 1:
                return hint, metas
            hint = args[0]
        else:
            return hint, metas


def _field_hint(kind: Any, name: str) -> Any:
    kind, _ = _unwrap(kind)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        for f in msgspec.structs.fields(kind):
            if f.encode_name == name:
                return f.type
    return None


def _type_at(kind: Any, path: str) -> Any:
    for step in _steps(path):
        if isinstance(step, str):
            kind = _field_hint(kind, step)
        else:
            kind, _ = _unwrap(kind)
            args = typing.get_args(kind)
            kind = args[0] if args else None
    return _unwrap(kind)[0]


def _message_at(kind: Any, path: str) -> str | None:
    """The error text the innermost field on `path` declares (or the list holding it)."""
    message = None
    for step in _steps(path):
        if isinstance(step, str):
            kind, message = _field_hint(kind, step), None
        else:
            kind, _ = _unwrap(kind)
            args = typing.get_args(kind)
            kind = args[0] if args else None
        for meta in _unwrap(kind)[1]:
            text = (meta.extra or {}).get("error")
            if text is not None:
                message = text
    return message
