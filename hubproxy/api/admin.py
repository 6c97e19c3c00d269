"""Running the hub over HTTP, for admins and owners only: everyone's usage and calls (with CSV
export), credit grants and their history, rates and users under /api/admin. To a member none
of it exists (404)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hubproxy.api import user as views
from hubproxy.api.common import authenticate, read_json
from hubproxy.api.state import CREDITS, RATES, READER, WRITER
from hubproxy.billing.pricing import (
    KINDS,
    MAX_BALANCE,
    given_rates,
    margin_rates,
    only,
    signed_amount,
)
from hubproxy.errors import BadRequest, NotFound, ServiceUnavailable
from hubproxy.gateway.auth import Principal
from hubproxy.store import ledger, reports

routes = web.RouteTableDef()

CREDIT_FIELDS = frozenset({"user", "amount", "kind", "note"})
SET_FIELDS = frozenset({"rates", "dry_run"})
MARGIN_FIELDS = frozenset({"unit_costs", "margin_percent", "credit_price", "dry_run"})


async def admin(request: web.Request) -> Principal:
    """The caller, if an admin or owner. A member gets the answer of a route that does not
    exist: the admin API is not theirs to discover, and nothing they sent is read."""
    principal = await authenticate(request)
    if not principal.is_admin:
        raise NotFound(f"Unknown route: {request.method} {request.path}", code="unknown_route")
    return principal


async def user_named(request: web.Request, name: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise BadRequest("'user' must be a user name.", param="user")
    found = await reports.user_by_name(request.app[READER], name)
    if found is None:
        raise NotFound(f"No user named '{name}'.", code="user_not_found", param="user")
    return found


async def user_filter(request: web.Request) -> tuple[int | None, str | None]:
    """?user=NAME: that user's id and name, or everyone."""
    if "user" not in request.query:
        return None, None
    found = await user_named(request, request.query["user"])
    return found["id"], found["name"]


@routes.get("/api/admin/usage")
async def admin_usage(request: web.Request) -> web.Response:
    await admin(request)
    views.check_params(request, views.USAGE_PARAMS | {"user"})
    user_id, name = await user_filter(request)
    return await views.usage_reply(request, user_id, name)


@routes.get("/api/admin/calls")
async def admin_calls(request: web.Request) -> web.StreamResponse:
    await admin(request)
    views.check_params(request, views.CALL_PARAMS | {"user", "format"})
    user_id, _ = await user_filter(request)
    return await views.listing_reply(request, user_id)


@routes.get("/api/admin/calls/{call_id}")
async def admin_call(request: web.Request) -> web.Response:
    await admin(request)
    return await views.call_reply(request, None)


@routes.get("/api/admin/credits")
async def admin_grants(request: web.Request) -> web.Response:
    """Grants, refunds and adjustments, newest first, with the admin who made each (null from
    the CLI): ?user= one user's, ?limit=, ?cursor= from next_cursor."""
    await admin(request)
    views.check_params(request, frozenset({"user", "limit", "cursor"}))
    user_id, _ = await user_filter(request)
    limit = views.page_limit(request)
    raw = request.query.get("cursor")
    if raw is not None and not views.DIGITS.match(raw):
        raise BadRequest("'cursor' must be an id from 'next_cursor'.", param="cursor")
    rows = await ledger.grants(
        request.app[READER], user_id=user_id, before=None if raw is None else int(raw),
        limit=limit + 1,
    )  # fmt: skip
    data = [
        {**r, **views.money("amount", r["amount"]), "created_at": reports.iso(r["created_at"])}
        for r in rows[:limit]
    ]
    next_cursor = str(data[-1]["id"]) if len(rows) > limit else None
    return views.reply({"object": "list", "data": data, "next_cursor": next_cursor})


@routes.post("/api/admin/credits")
async def admin_credits(request: web.Request) -> web.Response:
    """Grant (refund, adjust) a user's credits. The balance moves once the ledger row, which
    names the granting admin, is committed: never before, and not at all if it fails."""
    principal = await admin(request)
    views.check_params(request, frozenset())
    body = await read_json(request)
    only(body, CREDIT_FIELDS)
    kind = body.get("kind", "grant")
    if kind not in KINDS:
        raise BadRequest("'kind' must be one of: grant, adjustment, refund.", param="kind")
    amount = signed_amount(body.get("amount"), negative_ok=kind == "adjustment")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 1000:
        raise BadRequest("'note' must be a string of at most 1000 characters.", param="note")
    target = await user_named(request, body.get("user"))
    credits = request.app[CREDITS]
    if abs(credits.balances.get(target["id"], 0) + amount) > MAX_BALANCE:
        raise BadRequest("That would take the balance out of range.", param="amount")
    op = credits.grant(
        user_id=target["id"], kind=kind, amount=amount, note=note,
        actor_user_id=principal.user_id,
    )  # fmt: skip
    try:
        committed = request.app[WRITER].commit(op)
        credits.apply_once(committed, target["id"], amount)
        await asyncio.shield(committed)  # a client that leaves does not cancel the grant
    except Exception:
        raise ServiceUnavailable("The grant could not be recorded; nothing was applied.") from None
    return views.reply(
        {"user": target["name"], "kind": kind, **views.money("amount", amount), "note": note,
         "actor": principal.user_name, **views.balance(request.app, target["id"])}
    )  # fmt: skip


@routes.get("/api/admin/rates")
async def admin_rates(request: web.Request) -> web.Response:
    await admin(request)
    views.check_params(request, frozenset())
    return views.reply({"object": "list", "data": await reports.rates(request.app[READER])})


@routes.put("/api/admin/rates")
async def admin_set_rates(request: web.Request) -> web.Response:
    """Set rates as given ({"rates": [...]}) or as unit costs plus a margin ({"unit_costs":
    [...], "margin_percent", "credit_price"}); "dry_run" shows the change without making it."""
    await admin(request)
    views.check_params(request, frozenset())
    body = await read_json(request)
    bulk = "unit_costs" in body
    only(body, MARGIN_FIELDS if bulk else SET_FIELDS)
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("'dry_run' must be true or false.", param="dry_run")
    new = margin_rates(body) if bulk else given_rates(body)
    reader = request.app[READER]
    old = {(r["model"], r["type"]): r for r in await reports.rates(reader)}
    changes = []
    for (model, kind), rate in new.items():
        before = old.get((model, kind))
        was = None if before is None else {k: before[k] for k in rate.strings()}
        changes.append(
            {"model": model, "type": kind, "old": was, "new": rate.strings(),
             "changed": was != rate.strings()}
        )  # fmt: skip
    if not dry_run:
        ops = [
            ledger.set_rate(model.partition("/")[0], model.partition("/")[2], kind, r.strings())
            for (model, kind), r in new.items()
        ]
        await request.app[WRITER].commit(*ops)
        request.app[RATES].replace(await ledger.rates(reader))  # the next call pays the new rate
    return views.reply({"dry_run": dry_run, "applied": not dry_run, "data": changes})


@routes.get("/api/admin/users")
async def admin_users(request: web.Request) -> web.Response:
    await admin(request)
    views.check_params(request, frozenset())
    data = [
        {**u, **views.balance(request.app, u["id"])}
        for u in await reports.users(request.app[READER])
    ]
    return views.reply({"object": "list", "data": data})
