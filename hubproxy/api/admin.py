"""Running the hub over HTTP, for admins and owners only: everyone's usage and calls (with CSV
export), credit grants, rates and users under /api/admin. To a member none of it exists (404)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from hubproxy import billing
from hubproxy.api import user as views
from hubproxy.api.common import authenticate, read_json
from hubproxy.api.state import CREDITS, GATEWAY, RATES, READER
from hubproxy.auth import Principal
from hubproxy.context import REQUEST_ID
from hubproxy.errors import BadRequest, HubError, NotFound, ServiceUnavailable, Unprocessable
from hubproxy.store import ledger, reports

routes = web.RouteTableDef()

CSV_PAGE = 1000  # calls per page of a CSV export: what it holds in memory at once
KINDS = ("grant", "adjustment", "refund")
MAX_AMOUNT = 10**9 * billing.MICRO  # one grant: a billion credits
MAX_BALANCE = 10**18  # micro-credits; far below SQLite's 2**63 integers
MAX_RATE = 10**6 * billing.MICRO  # a million credits per 1M tokens (or per image)
MAX_RATES = 1000  # entries in one PUT
CREDIT_FIELDS = frozenset({"user", "amount", "kind", "note"})
RATE_FIELDS = frozenset({"model", "type", "input", "output", "cached_input", "per_image"})
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


def only(body: dict[str, Any], allowed: frozenset[str], where: str = "") -> None:
    """Refuse (422) a field the caller may not set, such as a balance or a role: nothing of
    the request is applied."""
    for name in body:
        if name not in allowed:
            raise Unprocessable(
                f"'{where}{name}' cannot be set here; allowed: {', '.join(sorted(allowed))}.",
                code="field_not_allowed",
                param=where + name,
            )


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
    form = request.query.get("format", "json")
    if form == "json":
        return await views.calls_reply(request, user_id)
    if form != "csv":
        raise BadRequest("'format' must be json or csv.", param="format")
    if "limit" in request.query:
        raise BadRequest("format=csv exports every matching call; drop 'limit'.", param="limit")
    f, cursor = views.call_query(request, user_id)
    pages = reports.csv_pages(request.app[READER], f, cursor=cursor, page_size=CSV_PAGE)
    first = await anext(pages)  # before the status line: a failure here is still a JSON error
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="hubproxy-calls-{stamp}.csv"',
            "X-Request-Id": request[REQUEST_ID],
        }
    )
    await resp.prepare(request)
    try:
        await resp.write(first.encode())
        async for chunk in pages:
            await resp.write(chunk.encode())
        await resp.write_eof()
    except ConnectionResetError:
        pass  # the client left; stop reading pages
    except Exception:
        # Too late for an error answer: drop the connection, so that the client sees a cut
        # transfer rather than a short file that looks whole; the edge logs the error.
        if request.transport is not None:
            request.transport.close()
        raise
    finally:
        await pages.aclose()
    return resp


@routes.get("/api/admin/calls/{call_id}")
async def admin_call(request: web.Request) -> web.Response:
    await admin(request)
    return await views.call_reply(request, None)


@routes.post("/api/admin/credits")
async def admin_credits(request: web.Request) -> web.Response:
    await admin(request)
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
    op = credits.grant(target["id"], kind, amount, note)
    try:
        await request.app[GATEWAY].writer.commit(op)
    except Exception:
        # Not recorded: take back what grant() moved in memory, so memory matches the ledger.
        credits.balances[target["id"]] -= amount
        raise ServiceUnavailable("The grant could not be recorded; nothing was applied.") from None
    return views.reply(
        {"user": target["name"], "kind": kind, **views.money("amount", amount), "note": note,
         **views.balance(request.app, target["id"])}
    )  # fmt: skip


def signed_amount(value: Any, *, negative_ok: bool) -> int:
    """Decimal credits → micro-credits; a leading minus only where negative_ok. Never 0."""
    if value is None:
        raise BadRequest("Missing required parameter: 'amount'.", param="amount")
    sign = 1
    if isinstance(value, str) and value.strip().startswith("-"):
        sign, value = -1, value.strip()[1:]
    elif isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        sign, value = -1, -value
    if sign < 0 and not negative_ok:
        raise BadRequest(
            "'amount' must be positive; use kind 'adjustment' to take credits.", param="amount"
        )
    try:
        micro = billing.parse_amount(value, "amount")
    except BadRequest as exc:
        exc.param = "amount"
        raise
    if not 0 < micro <= MAX_AMOUNT:
        raise BadRequest("'amount' must be more than 0 and at most 1000000000.", param="amount")
    return sign * micro


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
        await request.app[GATEWAY].writer.commit(*ops)
        request.app[RATES].replace(await ledger.rates(reader))  # the next call pays the new rate
    return views.reply({"dry_run": dry_run, "applied": not dry_run, "data": changes})


def entries(body: dict[str, Any], name: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(where, model, type, entry) of each item of body[name], checked for shape."""
    items = body.get(name)
    if not isinstance(items, list) or not items or len(items) > MAX_RATES:
        raise BadRequest(f"'{name}' must be a list of 1 to {MAX_RATES} objects.", param=name)
    out, seen = [], set()
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"'{where}' must be an object.", param=where)
        only(item, RATE_FIELDS, where + ".")
        model, kind = item.get("model"), item.get("type", "chat")
        provider, sep, rest = model.partition("/") if isinstance(model, str) else ("", "", "")
        if not (sep and provider and rest):
            raise BadRequest(f"'{where}.model' must be 'provider/model'.", param=where + ".model")
        if kind not in ("chat", "embedding"):
            raise BadRequest(f"'{where}.type' must be chat or embedding.", param=where + ".type")
        if (model, kind) in seen:
            raise BadRequest(f"'{where}': {model} ({kind}) is listed twice.", param=where)
        seen.add((model, kind))
        for field in ("input", "output"):
            if item.get(field) is None:
                raise BadRequest(f"Missing '{where}.{field}'.", param=f"{where}.{field}")
        out.append((where, str(model), str(kind), item))
    return out


def checked(where: str, make: Callable[..., billing.Rate], *args: Any) -> billing.Rate:
    """The rate `make(*args)` builds, with `where` in its error, and within bounds."""
    try:
        rate = make(*args)
    except HubError as exc:
        raise BadRequest(f"{where}: {exc.message}", param=where) from None
    values = (rate.input, rate.output, rate.cached_input or 0, rate.per_image)
    if max(values) > MAX_RATE:
        raise BadRequest(f"{where}: a rate may be at most 1000000 credits.", param=where)
    return rate


def given_rates(body: dict[str, Any]) -> dict[tuple[str, str], billing.Rate]:
    return {
        (model, kind): checked(
            where, billing.Rate.parse, e["input"], e["output"], e.get("cached_input"),
            e.get("per_image", 0),
        )
        for where, model, kind, e in entries(body, "rates")
    }  # fmt: skip


def margin_rates(body: dict[str, Any]) -> dict[tuple[str, str], billing.Rate]:
    """rate = unit cost × (1 + margin%) / credit price, for each price of each model."""
    margin = body.get("margin_percent")
    if margin is None:
        raise BadRequest("Missing required parameter: 'margin_percent'.", param="margin_percent")
    price = body.get("credit_price", "1")
    for name, value in (("margin_percent", margin), ("credit_price", price)):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadRequest(f"'{name}' must be a decimal number.", param=name)

    def rate(e: dict[str, Any]) -> billing.Rate:
        def of(v: Any) -> int:
            return billing.rate_with_margin(v, margin, price)

        cached = e.get("cached_input")
        return billing.Rate(
            of(e["input"]), of(e["output"]), None if cached is None else of(cached),
            of(e.get("per_image", 0)),
        )  # fmt: skip

    return {
        (model, kind): checked(where, rate, e)
        for where, model, kind, e in entries(body, "unit_costs")
    }


@routes.get("/api/admin/users")
async def admin_users(request: web.Request) -> web.Response:
    await admin(request)
    views.check_params(request, frozenset())
    data = [
        {**u, **views.balance(request.app, u["id"])}
        for u in await reports.users(request.app[READER])
    ]
    return views.reply({"object": "list", "data": data})
