"""Running the hub over HTTP, for admins and owners only: everyone's usage and calls (with CSV
export), credit grants and their history, rates and users under /api/admin. To a member none
of it exists (404)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from hubproxy.api import shapes
from hubproxy.api import user as views
from hubproxy.api.common import admin
from hubproxy.api.schema import Api
from hubproxy.api.state import CREDITS, RATES, READER, WRITER
from hubproxy.billing.pricing import (
    MAX_BALANCE,
    given_rates,
    margin_rates,
    signed_amount,
)
from hubproxy.errors import BadRequest, NotFound, ServiceUnavailable
from hubproxy.gateway.auth import Principal
from hubproxy.store import ledger, reports

api = Api()

__all__ = ["admin", "api", "user_named"]


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


@api.get("/api/admin/usage", ok=shapes.Usage, admin=True)
async def admin_usage(request: web.Request, query: shapes.AdminUsageQuery) -> web.Response:
    """Everyone's usage (or ?user='s) between ?from= and ?to=, grouped by ?group_by=."""
    user_id, name = await user_filter(request)
    return await views.usage_reply(request, user_id, name)


@api.get("/api/admin/calls", ok=shapes.CallList, admin=True, csv=True)
async def admin_calls(request: web.Request, query: shapes.AdminCallsQuery) -> web.StreamResponse:
    """Everyone's calls (or ?user='s), newest first, a page at a time (or as CSV)."""
    user_id, _ = await user_filter(request)
    return await views.listing_reply(request, user_id)


@api.get("/api/admin/calls/{call_id}", ok=shapes.Call, admin=True)
async def admin_call(request: web.Request) -> web.Response:
    """Anyone's call."""
    return await views.call_reply(request, None)


@api.get("/api/admin/credits", ok=shapes.GrantHistory, admin=True)
async def admin_grants(request: web.Request, query: shapes.LedgerQuery) -> web.Response:
    """Grants, refunds and adjustments, newest first, with the admin who made each (null from
    the CLI): ?user= one user's, ?limit=, ?cursor= from next_cursor."""
    user_id = None
    if query.user is not UNSET:
        user_id = (await user_named(request, query.user))["id"]
    limit = 50 if query.limit is UNSET else query.limit
    before = None if query.cursor is UNSET else int(query.cursor)
    rows = await ledger.grants(request.app[READER], user_id=user_id, before=before, limit=limit + 1)
    data = [
        {**r, **views.money("amount", r["amount"]), "created_at": reports.iso(r["created_at"])}
        for r in rows[:limit]
    ]
    next_cursor = str(data[-1]["id"]) if len(rows) > limit else None
    return views.reply({"object": "list", "data": data, "next_cursor": next_cursor})


@api.post("/api/admin/credits", ok=shapes.Granted, admin=True, errors=(503,))
async def admin_credits(
    request: web.Request, caller: Principal, body: shapes.Grant
) -> web.Response:
    """Grant, adjust or refund a user's credits; the answer has their new balance. The balance
    moves once the ledger row, which names the granting admin, is committed: never before, and
    not at all if it fails."""
    principal = caller
    kind = body.kind
    amount = signed_amount(body.amount, negative_ok=kind == "adjustment")
    note = body.note
    target = await user_named(request, body.user)
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


@api.get("/api/admin/rates", ok=shapes.RateList, admin=True)
async def admin_rates(request: web.Request) -> web.Response:
    """Every rate as stored, in decimal strings of credits."""
    return views.reply({"object": "list", "data": await reports.rates(request.app[READER])})


@api.put("/api/admin/rates", ok=shapes.RateChanges, admin=True)
async def admin_set_rates(request: web.Request, body: shapes.RatesChange) -> web.Response:
    """Set rates as given, or as unit costs plus a margin.

    Either {"rates": [...]} or {"unit_costs": [...], "margin_percent", "credit_price"};
    "dry_run" shows the change without making it."""
    sent = msgspec.to_builtins(body)
    bulk = "unit_costs" in sent
    dry_run = body.dry_run
    new = margin_rates(sent) if bulk else given_rates(sent)
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


@api.get("/api/admin/users", ok=shapes.UserList, admin=True)
async def admin_users(request: web.Request) -> web.Response:
    """Every user, with their number of active keys and their balance."""
    data = [
        {**u, **views.balance(request.app, u["id"])}
        for u in await reports.users(request.app[READER])
    ]
    return views.reply({"object": "list", "data": data})
