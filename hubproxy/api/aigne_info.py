"""AIGNE Hub's informational routes: discovery (/__blocklet__.js), the public model list with
per-token rates, whether a caller may call (/api/v2/status), and the credit balance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from hubproxy.api import aigne_answers as answers
from hubproxy.api import aigne_shapes as shapes
from hubproxy.api.aigne_common import payment_link
from hubproxy.api.schema import PUBLIC, Api
from hubproxy.api.state import CATALOG, CREDITS, RATES, READER
from hubproxy.billing import prices
from hubproxy.gateway.auth import Principal
from hubproxy.money import format_amount
from hubproxy.store import ledger

api = Api(error=answers.AigneError, tag="aigne")
# AIGNE Hub's blocklet DID: AIGNE's SDK finds the hub's routes under the mount point of the
# component with this DID (@aigne/aigne-hub's AIGNE_HUB_BLOCKLET_DID). hubproxy serves them at
# the root.
AIGNE_HUB_DID = "z8ia3xzq2tMq8CRHfaXj1BTYJyYnEcHbqP8cJ"
MOUNT_POINT = "/"
TYPES = ("chat", "embedding", "image", "audio")


def reply(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


@api.get("/__blocklet__.js", ok=answers.BlockletInfo, auth=PUBLIC,
         media=("application/javascript",))  # fmt: skip
async def blocklet(request: web.Request, query: shapes.DiscoveryQuery) -> web.Response:
    """Discovery, as a Blocklet Server answers it: JSON with ?type=json, else a script."""
    info = {
        "appName": "hubproxy",
        "appUrl": f"{request.scheme}://{request.host}",
        "prefix": "/",
        "componentMountPoints": [
            {"title": "AIGNE Hub", "name": "ai-kit", "did": AIGNE_HUB_DID,
             "mountPoint": MOUNT_POINT, "status": "running"},
        ],
    }  # fmt: skip
    if query.type == "json":
        return reply(info)
    script = b"window.blocklet = " + orjson.dumps(info) + b";\n"
    return web.Response(body=script, content_type="application/javascript")


@api.get("/api/ai-providers/models", ok=list[answers.AigneModel], auth=PUBLIC)
async def models(request: web.Request, query: shapes.ModelsQuery) -> web.Response:
    """Every routed model with its rates.

    Rates are decimal strings of credits per token (per image for image models)."""
    return _models(request, query)


@api.get("/api/ai/models", ok=list[answers.AigneModel], auth=PUBLIC)
async def ai_models(request: web.Request, query: shapes.ModelsQuery) -> web.Response:
    """Every routed model with its rates (the same as /api/ai-providers/models)."""
    return _models(request, query)


def _models(request: web.Request, query: shapes.ModelsQuery) -> web.Response:
    wanted = query.type or None
    priced: dict[tuple[str, str], list[tuple[str, prices.Rate | None]]] = {}
    for (provider, name, kind), found in request.app[RATES].items():
        priced.setdefault((provider, name), []).append((kind, found))
    listed = [
        m["id"].split("/", 1) for m in request.app[CATALOG].current.listed() if m["type"] != "alias"
    ]
    names = list(dict.fromkeys([*((p, m) for p, m in listed), *priced]))
    out = []
    for provider, model in names:
        for kind, rate in priced.get((provider, model)) or [("chat", None)]:
            if wanted and kind != wanted:
                continue
            out.append(_entry(provider, model, kind, rate))
    return reply(out)


def _entry(provider: str, model: str, kind: str, rate: prices.Rate | None) -> dict[str, Any]:
    r = rate or prices.Rate(0, 0)
    per_token_in, per_token_out = _per_token(r.input), _per_token(r.output)
    if kind == "image":
        per_token_out = format_amount(r.per_image)  # AIGNE bills n images at the output rate
    metadata: dict[str, Any] = {"features": []}
    if kind == "image":
        metadata["imageGeneration"] = {"variants": [k for k, _ in r.per_image_variants]}
    return {
        "key": f"{provider}/{model}", "model": model, "type": kind, "provider": provider,
        "providerId": provider, "input_credits_per_token": per_token_in,
        "output_credits_per_token": per_token_out, "modelMetadata": metadata,
        "status": {"available": True}, "providerDisplayName": provider,
    }  # fmt: skip


def _per_token(millionths: int) -> str:
    """A rate (millionths of a credit per 1M tokens) as credits per token, in decimal."""
    value = Decimal(millionths).scaleb(-12).normalize()
    return format(value, "f") if value else "0"


@api.get("/api/v2/status", ok=answers.AigneStatus, errors=(404,))
async def status(
    request: web.Request, caller: Principal, query: shapes.StatusQuery
) -> web.Response:
    """Whether the caller may call (the model, if named).

    {"available": true}, or false with why (code 402, type NOT_ENOUGH, when credits are
    short). A model that is not routed is a 404."""
    model = query.model or None
    credits = request.app[CREDITS]
    if model:
        route = request.app[CATALOG].current.resolve(model)[0]  # 404 in AIGNE's shape
        rated = any(
            (p, m) == (route.provider, route.model) for (p, m, _), _ in request.app[RATES].items()
        )
        if credits.enabled and not rated:
            return reply({"available": False, "error": f"The model '{model}' has no rate.",
                          "code": 403, "type": "NO_RATE"})  # fmt: skip
    if credits.enabled and credits.available(caller.user_id) <= 0:
        return reply({"available": False, "error": "Insufficient credits.", "code": 402,
                      "link": payment_link(request), "type": "NOT_ENOUGH"})  # fmt: skip
    return reply({"available": True})


@api.get("/api/user/credit/balance", ok=answers.AigneBalance)
async def balance(request: web.Request, caller: Principal) -> web.Response:
    """The caller's credits, as decimal strings.

    What is left, what calls in flight hold, and what was granted (and how many times)."""
    credits = request.app[CREDITS]
    count, granted = await ledger.grant_totals(request.app[READER], caller.user_id)
    return reply({
        "balance": format_amount(credits.balances.get(caller.user_id, 0)),
        "currency": "credits",
        "total": format_amount(granted),
        "grantCount": count,
        "pendingCredit": format_amount(credits.held.get(caller.user_id, 0)),
    })  # fmt: skip
