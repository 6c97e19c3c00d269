"""A fake Azure OpenAI resource: the OpenAI fake's answers at Azure's per-deployment URLs.

POST /openai/deployments/{deployment}/chat/completions?api-version=... (and /embeddings) with
the key in an `api-key` header, as Azure wants them. The body's `model` (the deployment name,
which Azure ignores) picks the OpenAI fake's behaviour: ok, e429, cut ... A wrong key gets
Azure's 401, a wrong or missing api-version its 404, both in Azure's error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tests.fakes.openai_upstream import FakeOpenAI

KEY = "azure-UPSTREAM-secret-key-00000001"
API_VERSION = "2024-10-21"
DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def azure_app(fake: FakeOpenAI, key: str = KEY) -> web.Application:
    @web.middleware
    async def as_azure(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("api-key") != key or "Authorization" in request.headers:
            return web.json_response({"error": {"code": "401", "message": DENIED}}, status=401)
        if request.query.get("api-version") != API_VERSION:
            return web.json_response(
                {"error": {"code": "404", "message": "Resource not found"}}, status=404
            )
        return await handler(request)

    app = web.Application(middlewares=[as_azure])
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", fake.chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", fake.embeddings)
    return app
