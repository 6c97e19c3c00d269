"""The /api route registry: each route declares its caller, query, body and answers once; from
that one declaration it is registered with aiohttp, what a caller sends is decoded and checked,
and the OpenAPI document is written (hubproxy.api.openapi). See docs/api-routes.md.

A handler names what it needs by parameter: `caller` (who the route's Security check found:
the Principal of a hub key, unless the route says otherwise), `query` (a msgspec Struct of
query parameters) and `body` (a Struct; `Struct | None` when the body is optional;
`Annotated[dict[str, Any], Kind]` to check the body against Kind and hand the handler the JSON
object itself, for a face that translates its own wire format). Their annotations are the
schema: the decoder and the document read the same types. Who may call is the route's
`Security`: any hub key (the default), an admin's, a signature, or anyone.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from hubproxy.api.common import admin, authenticate, read_json
from hubproxy.errors import BadRequest, Unprocessable

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


class Open(Struct, forbid_unknown_fields=False):
    """A body or query in a foreign wire format (AIGNE's): fields it does not name pass, since
    its clients send more than the hub reads; the ones it names are checked."""

    @classmethod
    def allowed(cls, sent: dict[str, Any]) -> set[str]:
        return set(sent)


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
class Security:
    """Who may call a route. `check` returns the caller (a Principal, or what the face calls
    its caller) or refuses, before anything sent is read; None: anyone. `schemes` are the
    OpenAPI security schemes it takes, all together (none: public); `headers` document the
    headers it reads beside them."""

    check: Callable[[web.Request], Awaitable[Any]] | None
    schemes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    headers: tuple[Mapping[str, Any], ...] = ()


BEARER_SCHEMES: Mapping[str, Mapping[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A hub key (`hubproxy keys create`). The same key is accepted as an "
        "`x-api-key` header.",
    }
}
MEMBER = Security(authenticate, BEARER_SCHEMES)  # any valid hub key
ADMIN = Security(admin, BEARER_SCHEMES)  # an owner's or admin's; to a member, a 404
PUBLIC = Security(None)


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
    security: Security = MEMBER
    error: type[Answer] = Error  # the shape of its error answers
    tag: str = ""
    media: tuple[str, ...] = ()  # a 200's media types besides JSON (and CSV)
    raw_body: bool = False  # the handler gets the JSON object, checked against `body`


@dataclass
class Api:
    """A table of /api routes (one per module, like web.RouteTableDef) with their schemas.
    `error` is the shape its routes' errors take (the middleware renders them so, by path);
    `tag` groups them in the document (else the path's second segment)."""

    operations: list[Operation] = field(default_factory=list)
    error: type[Answer] = Error
    tag: str = ""

    def route(
        self,
        method: str,
        path: str,
        *,
        ok: Any,
        admin: bool = False,
        auth: Security | None = None,
        errors: tuple[int, ...] = (),
        csv: bool = False,
        media: tuple[str, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """`admin=True` is `auth=ADMIN`; without either, any valid hub key (MEMBER). `media`:
        the media types a 200 may take besides JSON (text/event-stream for a stream)."""
        security = auth or (ADMIN if admin else MEMBER)

        def register(handler: Handler) -> Handler:
            hints = typing.get_type_hints(handler, include_extras=True)
            names = list(inspect.signature(handler).parameters)[1:]
            unknown = set(names) - {"caller", "query", "body"}
            if unknown:
                raise TypeError(f"{handler.__name__}: unknown parameters {sorted(unknown)}")
            if "caller" in names and security.check is None:
                raise TypeError(f"{handler.__name__}: a public route has no caller")
            body, required, raw = (
                _body_hint(hints["body"]) if "body" in names else (None, True, False)
            )
            doc = inspect.getdoc(handler) or ""
            summary, _, rest = doc.partition("\n")
            self.operations.append(
                Operation(
                    method=method, path=path, handler=handler, summary=summary.strip(),
                    description=rest.strip(), admin=security is ADMIN, ok=ok, errors=errors,
                    csv=csv, query=hints.get("query") if "query" in names else None,
                    body=body, body_required=required, wants_caller="caller" in names,
                    security=security, error=self.error, tag=self.tag, media=media, raw_body=raw,
                )
            )  # fmt: skip
            return handler

        return register

    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(op.path for op in self.operations))

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


def _body_hint(hint: Any) -> tuple[type[Struct], bool, bool]:
    """(the body type, whether a body is required, whether the handler takes the JSON object)
    of a `body` annotation."""
    required = True
    if isinstance(hint, types.UnionType) and type(None) in hint.__args__:
        hint, required = next(a for a in hint.__args__ if a is not type(None)), False
    if typing.get_origin(hint) is typing.Annotated:
        _, kind, *_ = typing.get_args(hint)
        return kind, required, True
    return hint, required, False


def endpoint(op: Operation) -> Handler:
    """The aiohttp handler: the route's Security check first (a member asking for an admin
    route gets a 404, and nothing they sent is read), then the query and the body, then
    `op.handler`."""

    check = op.security.check

    async def handle(request: web.Request) -> web.StreamResponse:
        caller = None if check is None else await check(request)
        kwargs: dict[str, Any] = {}
        query = decode_query(request, op.query)
        if op.query is not None:
            kwargs["query"] = query
        if op.body is not None:
            kwargs["body"] = await decode_body(
                request, op.body, required=op.body_required, raw=op.raw_body
            )
        if op.wants_caller:
            kwargs["caller"] = caller
        return await op.handler(request, **kwargs)

    handle.__name__ = op.handler.__name__
    return handle


def decode_query(request: web.Request, kind: type[Struct] | None) -> Struct | None:
    """The query as `kind`; a parameter the route does not take is refused, since a typo must
    not widen a filter (but passes an `Open` query, a foreign client's)."""
    allowed = {} if kind is None else {f.encode_name: f for f in msgspec.structs.fields(kind)}
    passes = kind is not None and issubclass(kind, Open)
    for name in request.query:
        if name not in allowed and not passes:
            known = ", ".join(sorted(allowed))
            raise BadRequest(f"Unknown query parameter '{name}'; this takes: {known}.", param=name)
    if kind is None:
        return None
    values = {name: request.query[name] for name in allowed if name in request.query}
    try:
        return msgspec.convert(values, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise refusal(exc, kind, values) from None


async def decode_body(
    request: web.Request, kind: type[Struct], *, required: bool, raw: bool = False
) -> Any:
    """The JSON body as `kind` (None if optional and absent); with `raw`, the JSON object
    itself once it is found to be a `kind`."""
    if not required and not request.can_read_body:
        return None
    body = await read_json(request)
    allowed = kind.allowed(body)
    for name in body:  # before any value is looked at, as each field's own check would be
        if name not in allowed:
            raise _not_allowed(name, allowed)
    try:
        decoded = msgspec.convert(body, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise refusal(exc, kind, body) from None
    return body if raw else decoded


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
