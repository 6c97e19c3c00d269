"""GET /openapi.json: a valid OpenAPI 3.1 document of every /api route the app serves, written
from the routes' own declarations, and the errors that decoding by those declarations gives."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from hubproxy.api.schema import Api, Struct
from tests.conftest import Hub, add_key


async def fetch(hub: Hub, path: str, key: str | None = None, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(kw.pop("method", "GET"), hub.url + path, headers=headers, **kw) as r,
    ):
        return r.status, await r.json()


def undocumented(app: web.Application, doc: dict[str, Any]) -> list[str]:
    """Every /api route the app serves that the document does not describe."""
    missing = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        if not path.startswith("/api/") or route.method == "HEAD":
            continue
        if route.method.lower() not in doc["paths"].get(path, {}):
            missing.append(f"{route.method} {path}")
    return missing


async def test_the_document_is_public_valid_openapi_3_1_with_bearer_auth(hub: Hub) -> None:
    status, doc = await fetch(hub, "/openapi.json")  # no key: tools read it before they hold one
    assert status == 200
    validate(doc)  # raises on anything that is not OpenAPI 3.1
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]
        ["bearerAuth"]["description"],
    }  # fmt: skip
    assert doc["security"] == [{"bearerAuth": []}]
    error = doc["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"message", "type", "param", "code"}
    grant = doc["paths"]["/api/admin/credits"]["post"]
    assert grant["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Grant")
    assert {"400", "401", "404", "422"} <= set(grant["responses"])
    assert grant["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Error"
    )
    calls = doc["paths"]["/api/user/calls"]["get"]
    params = {p["name"]: p for p in calls["parameters"]}
    assert set(params) == {"cursor", "limit", "status", "model", "from", "to", "format"}
    assert params["limit"]["schema"]["maximum"] == 500
    assert "text/csv" in calls["responses"]["200"]["content"]
    assert doc["paths"]["/api/admin/providers/{id}"]["get"]["parameters"][0]["in"] == "path"


async def test_every_api_route_the_app_serves_is_in_the_document(hub: Hub) -> None:
    """A route added with plain app.router (not through hubproxy.api.schema.Api) fails here."""
    _, doc = await fetch(hub, "/openapi.json")
    assert undocumented(hub.app, doc) == []
    assert len([op for ops in doc["paths"].values() for op in ops]) >= 53


async def test_aigne_routes_are_described_with_their_errors_streams_and_security(
    hub: Hub,
) -> None:
    _, doc = await fetch(hub, "/openapi.json")
    validate(doc)
    paths, schemes = doc["paths"], doc["components"]["securitySchemes"]

    def ref(content: dict[str, Any]) -> str:
        return str(content["application/json"]["schema"]["$ref"]).rsplit("/", 1)[1]

    aigne = [(p, m, op) for p, ops in paths.items() for m, op in ops.items()
             if op["tags"][0].startswith("aigne")]  # fmt: skip
    assert {p for p, _, _ in aigne} >= {
        "/api/v2/chat", "/api/v2/chat/completions", "/api/v2/embeddings", "/api/v2/image",
        "/api/v2/image/generations", "/api/v2/status", "/api/ai-providers/models",
        "/api/ai/models", "/api/user/credit/balance", "/api/app/register", "/api/app/status",
        "/api/app/subscription-webhook", "/api/v1/chat/completions", "/api/v1/embeddings",
        "/api/v1/image/generations", "/__blocklet__.js",
    }  # fmt: skip
    for path, _, op in aigne:  # every error in AIGNE's shape, never OpenAI's
        for status, answer in op["responses"].items():
            if status != "200":
                assert ref(answer["content"]) == "AigneError", (path, status)
    error = doc["components"]["schemas"]["AigneErrorBody"]
    assert set(error["properties"]) == {"message", "type", "timestamp", "link"}
    assert set(error["required"]) == {"message", "type", "timestamp"}

    chat = paths["/api/v2/chat"]["post"]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert ref(chat["responses"]["200"]["content"]) == "AigneChatReply"
    assert ref(chat["requestBody"]["content"]) == "AigneChatRequest"
    assert {"402", "404", "429", "502"} <= set(chat["responses"])
    assert "security" not in chat  # the document's own: a hub key
    assert "x-aigne-hub-client-did" in {p["name"] for p in chat["parameters"]}
    flat = paths["/api/v1/chat/completions"]["post"]
    assert "text/event-stream" in flat["responses"]["200"]["content"]
    # v1: signed by the app, not a hub key; the webhook by the payment system.
    [signed] = flat["security"]
    assert {schemes[name]["name"] for name in signed} == {
        "x-app-id", "x-timestamp", "x-component-sig"}  # fmt: skip
    assert all(schemes[name]["type"] == "apiKey" for name in signed)
    assert paths["/api/app/status"]["get"]["security"] == flat["security"]
    [webhook] = paths["/api/app/subscription-webhook"]["post"]["security"]
    assert [schemes[name]["name"] for name in webhook] == ["x-payment-signature"]
    for path in ("/api/ai-providers/models", "/api/ai/models", "/__blocklet__.js",
                 "/api/app/register"):  # fmt: skip
        op = paths[path]["post" if path == "/api/app/register" else "get"]
        assert op["security"] == [] and "401" not in op["responses"], path
    models = paths["/api/ai/models"]["get"]["responses"]["200"]["content"]["application/json"]
    assert models["schema"]["type"] == "array"
    # The limits admin: its own types, admin only.
    limits = paths["/api/admin/keys/{key_id}/limits"]["put"]
    assert ref(limits["requestBody"]["content"]) == "LimitsChange"
    assert {"401", "404", "422"} <= set(limits["responses"])
    assert ref(limits["responses"]["422"]["content"]) == "Error"


async def test_aignes_public_routes_pass_query_parameters_they_do_not_read(hub: Hub) -> None:
    """AIGNE's clients are not ours: a parameter a public AIGNE route does not read passes."""
    status, models = await fetch(hub, "/api/ai/models?type=chat&page=2")
    assert status == 200 and {m["type"] for m in models} == {"chat"}
    status, _ = await fetch(hub, "/api/user/balance?page=2", hub.key)
    assert status == 400  # ours still refuse a parameter they do not take


async def test_a_route_added_without_its_schema_is_caught(hub: Hub) -> None:
    _, doc = await fetch(hub, "/openapi.json")

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/admin/secret", handler)
    app.router.add_get("/api/user/balance", handler)  # documented
    assert undocumented(app, doc) == ["GET /api/admin/secret"]


def test_a_handler_can_only_take_what_the_registry_supplies() -> None:
    api = Api()

    async def handler(request: web.Request, user: str) -> web.Response:
        return web.Response()

    with pytest.raises(TypeError, match="unknown parameters"):
        api.post("/api/x", ok=Struct)(handler)


async def test_decoding_errors_keep_the_openai_shape_and_name_the_field(hub: Hub) -> None:
    root = add_key(hub.settings, "root", "owner")
    cases = [
        # (method, path, body, status, param)
        ("POST", "/api/admin/credits", {"user": "alice", "amount": "1", "kind": "gift"}, 400,
         "kind"),
        ("POST", "/api/admin/credits", {"user": "alice"}, 400, "amount"),
        ("POST", "/api/admin/credits", {"amount": "1", "user": "alice", "x": 1}, 422, "x"),
        ("PUT", "/api/admin/rates", {"rates": [{"model": "demo/echo", "input": "1",
         "output": "1", "cost": "1"}]}, 422, "rates[0].cost"),
        ("PUT", "/api/admin/rates", {"rates": [{"model": "echo", "input": "1", "output": "1"}]},
         400, "rates[0].model"),
        ("PUT", "/api/admin/rates", {"rates": [7]}, 400, "rates[0]"),
        ("POST", "/api/admin/users", {"name": "ok", "role": "king"}, 400, "role"),
        ("POST", "/api/admin/providers", {"name": "p", "type": "fake", "idle_timeout_s": "9"},
         400, "idle_timeout_s"),
        ("PATCH", "/api/admin/models/mdl_x", {"model": "a/b"}, 422, "model"),
        ("GET", "/api/user/calls?limit=0", None, 400, "limit"),
        ("GET", "/api/admin/usage?group_by=week", None, 400, "group_by"),
        ("GET", "/api/user/balance?x=1", None, 400, "x"),
    ]  # fmt: skip
    for method, path, body, status, param in cases:
        got, err = await fetch(hub, path, root, method=method, json=body)
        assert got == status and err["error"]["param"] == param, (path, body, err)
        assert set(err["error"]) == {"message", "type", "param", "code"}
        assert err["error"]["type"] == "invalid_request_error"
        assert param.split("[")[0].split(".")[0] in err["error"]["message"], err
    # The field's own words, with what was sent.
    _, err = await fetch(hub, "/api/admin/credits", root, method="POST",
                         json={"user": "alice", "amount": "1", "kind": "gift"})  # fmt: skip
    assert err["error"]["message"] == "'kind' must be one of: grant, adjustment, refund."
    _, err = await fetch(hub, "/api/admin/providers", root, method="POST",
                         json={"name": "p", "type": "nope"})  # fmt: skip
    assert err["error"]["message"].endswith("got 'nope'.")
    # A member asking for an admin route with a bad body learns nothing: 404, body unread.
    got, err = await fetch(hub, "/api/admin/credits", hub.key, method="POST", json={"x": 1})
    assert got == 404 and err["error"]["code"] == "unknown_route"
    # No key at all: 401 before anything is read.
    got, err = await fetch(hub, "/api/admin/credits?bad=1", method="POST", json={"x": 1})
    assert got == 401
