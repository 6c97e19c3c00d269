"""GET /openapi.json: the OpenAPI 3.1 document of every /api route, written from the routes'
own declarations (hubproxy.api.schema), never kept by hand.

It is public: it describes the software, which is open source, and holds nothing of this
hub's data; tools (SDK generators, schemathesis) read it before they hold a key. Whether a
caller may use an admin route is decided by the route, not by hiding its description."""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import msgspec
import orjson
from aiohttp import web

from hubproxy.api.schema import BEARER_SCHEMES, OPERATIONS, Error, Open, Operation

REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"\{([^}/:]+)(?::[^}]*)?\}")
# Why a route answers each error status (each in its route's error shape).
ERRORS = {
    400: "Bad input: the message says what is wrong (and `param`, in OpenAI's shape, names "
    "the field).",
    401: "No hub key, or one that is invalid or revoked (or, for a signed call, a signature "
    "that is missing, wrong, expired or used before).",
    402: "Not enough credits, or no active subscription: `link` (in AIGNE's shape) says where "
    "to get them.",
    403: "Not allowed: the resource is read-only here, or the key may not use this model.",
    404: "Not found (a route, or a model). To a member, an admin route does not exist either.",
    408: "The request body did not arrive within the read timeout.",
    409: "Conflicts with what is stored.",
    413: "The request body is larger than the server takes.",
    422: "A field that cannot be set here.",
    429: "A rate limit was reached; Retry-After says when to try again.",
    502: "The upstream provider failed or answered something unusable.",
    503: "Not possible now (nothing was applied, or no upstream could take the call).",
    504: "The upstream provider did not answer in time.",
}
# What an answer in another media type than JSON is.
MEDIA = {
    "text/csv": "CSV, a header line and a line for each row.",
    "text/event-stream": "Server-sent events, in the face's own format.",
    "application/javascript": "A script.",
}
DOCUMENT = web.AppKey("openapi_document", bytes)


def install(app: web.Application) -> None:
    """Serve GET /openapi.json, written once at start-up, when every route is in place."""
    app.router.add_get("/openapi.json", openapi_json)
    app.on_startup.append(_write)


async def _write(app: web.Application) -> None:
    app[DOCUMENT] = orjson.dumps(document(app.get(OPERATIONS, [])))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")


def document(operations: list[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`."""
    kinds = list(dict.fromkeys([
        Error, *(op.error for op in operations), *(op.ok for op in operations),
        *(op.body for op in operations if op.body), *(op.query for op in operations if op.query),
    ]))  # fmt: skip
    schemas, components = msgspec.json.schema_components(kinds, ref_template=REF)
    schema_of = dict(zip(kinds, schemas, strict=True))
    schemes: dict[str, Any] = dict(BEARER_SCHEMES)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        schemes.update(op.security.schemes)
        path = _PATH_PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, components, schema_of)
    for op in operations:  # a query's fields are listed as parameters, not as a schema
        if op.query is not None:
            components.pop(op.query.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubproxy API",
            "version": version("hubproxy"),
            "description": "Accounts, usage, billing and the control plane of a hubproxy "
            "gateway, and AIGNE Hub's API. A route takes a hub key as a bearer token unless "
            "it says otherwise (AIGNE v1 calls are signed by their app; model lists are "
            'public). Errors take OpenAI\'s shape, {"error": {"message", "type", "param", '
            '"code"}}, except on AIGNE\'s routes: {"error": {"message", "type", "timestamp", '
            '"link"}}.',
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": schemes},
        "security": [{name: [] for name in BEARER_SCHEMES}],
    }


def _operation(
    op: Operation, components: dict[str, Any], schema_of: dict[Any, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary or f"{op.method} {op.path}",
        "tags": [op.tag or op.path.split("/")[2]],
        "responses": _responses(op, schema_of),
    }
    if op.description:
        out["description"] = op.description
    if op.security.schemes != BEARER_SCHEMES:
        out["security"] = (
            [{name: [] for name in op.security.schemes}] if op.security.schemes else []
        )
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)
    ]
    params += [dict(header) for header in op.security.headers]
    if op.query is not None:
        schema = components[op.query.__name__]
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema_of[op.body]}},
        }
    return out


def _responses(op: Operation, schema_of: dict[Any, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": schema_of[op.ok]}}
    for media in ("text/csv",) * op.csv + op.media:
        what = MEDIA.get(media)
        ok[media] = {"schema": {"type": "string", **({"description": what} if what else {})}}
    statuses = {400, *op.errors}
    if op.security.check is not None:
        statuses.add(401)
    if op.admin or "{" in op.path:
        statuses.add(404)
    if op.body is not None:
        statuses |= {408, 413} if issubclass(op.body, Open) else {408, 413, 422}
    error = {"application/json": {"schema": schema_of[op.error]}}
    out: dict[str, Any] = {"200": {"description": "OK", "content": ok}}
    for status in sorted(statuses):
        out[str(status)] = {"description": ERRORS[status], "content": error}
    out["default"] = {"description": "An unexpected failure.", "content": error}
    return out
