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

from hubproxy.api.schema import OPERATIONS, Error, Operation

REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"\{([^}/:]+)(?::[^}]*)?\}")
# Why a route answers each error status (each in the Error shape).
ERRORS = {
    400: "Bad input: the message says what is wrong and `param` names the field.",
    401: "No hub key, or one that is invalid or revoked.",
    403: "Not allowed: the resource is read-only here.",
    404: "Not found. To a member, an admin route does not exist either.",
    408: "The request body did not arrive within the read timeout.",
    409: "Conflicts with what is stored.",
    413: "The request body is larger than the server takes.",
    422: "A field that cannot be set here.",
    503: "The change could not be made now; nothing was applied.",
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
    bodies = [op.ok for op in operations] + [op.body for op in operations if op.body]
    queries = [op.query for op in operations if op.query]
    _, components = msgspec.json.schema_components([Error, *bodies, *queries], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _PATH_PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, components)
    for query in queries:  # their fields are listed as parameters, not as a schema
        components.pop(query.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubproxy API",
            "version": version("hubproxy"),
            "description": "Accounts, usage, billing and the control plane of a hubproxy "
            "gateway. Every route takes a hub key as a bearer token. Errors take OpenAI's "
            'shape: {"error": {"message", "type", "param", "code"}}.',
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A hub key (`hubproxy keys create`). The same key is "
                    "accepted as an `x-api-key` header.",
                }
            },
        },
        "security": [{"bearerAuth": []}],
    }


def _operation(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary or f"{op.method} {op.path}",
        "tags": [op.path.split("/")[2]],
        "responses": _responses(op),
    }
    if op.description:
        out["description"] = op.description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)
    ]
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
            "content": {"application/json": {"schema": {"$ref": _ref(op.body)}}},
        }
    return out


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": {"$ref": _ref(op.ok)}}}
    if op.csv:
        ok["text/csv"] = {"schema": {"type": "string"}}
    statuses = {400, 401, *op.errors}
    if op.admin or "{" in op.path:
        statuses.add(404)
    if op.body is not None:
        statuses |= {408, 413, 422}
    error = {"application/json": {"schema": {"$ref": _ref(Error)}}}
    out: dict[str, Any] = {"200": {"description": "OK", "content": ok}}
    for status in sorted(statuses):
        out[str(status)] = {"description": ERRORS[status], "content": error}
    out["default"] = {"description": "An unexpected failure.", "content": error}
    return out


def _ref(kind: Any) -> str:
    return REF.format(name=kind.__name__)
