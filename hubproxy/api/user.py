"""The caller's own account under /api/user (balance, usage, calls with CSV export), and the
query parameters and answers it shares with the admin views."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from hubproxy.api import shapes
from hubproxy.api.context import REQUEST_ID
from hubproxy.api.schema import Api
from hubproxy.api.state import CREDITS, READER, WRITER
from hubproxy.errors import BadRequest, NotFound
from hubproxy.gateway.auth import Principal
from hubproxy.money import format_amount
from hubproxy.store import reports, usage
from hubproxy.store.clock import now_ms

api = Api()

WEEK_MS = 7 * usage.DAY_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last millisecond an answer can show: its timestamps are ISO dates, which end with 9999.
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // timedelta(
    milliseconds=1
)
LIMIT, MAX_LIMIT = 50, 500
FRESH_S = 1.0  # usage views show what was recorded up to this long ago: one flush a second
USAGE_PARAMS = frozenset({"from", "to", "group_by"})
CALL_PARAMS = frozenset({"cursor", "limit", "status", "model", "from", "to"})
CSV_PAGE = 1000  # calls per page of a CSV export: what it holds in memory at once
STATUSES = ("processing", "success", "failed")
_CURSOR = re.compile(r"^[0-9a-f]{1,64}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DIGITS = re.compile(r"^[0-9]{1,16}$")  # ASCII only: int() also reads '١٢٣', isdigit() '²'


def reply(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def money(name: str, micro: int) -> dict[str, Any]:
    """An amount both ways: integer micro-credits, and a decimal string of credits."""
    return {name: micro, f"{name}_credits": format_amount(micro)}


def balance(app: web.Application, user_id: int) -> dict[str, Any]:
    """From memory, where admission reads it: the ledger's sum, what in-flight calls hold, and
    what is left to spend."""
    credits = app[CREDITS]
    total, held = credits.balances.get(user_id, 0), credits.held.get(user_id, 0)
    return {**money("balance", total), **money("held", held), **money("available", total - held)}


def check_params(request: web.Request, allowed: frozenset[str]) -> None:
    """Refuse a parameter the endpoint does not know: a typo must not widen a filter."""
    for name in request.query:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise BadRequest(f"Unknown query parameter '{name}'; this takes: {known}.", param=name)


def parse_time(name: str, value: str, *, end: bool) -> int:
    """Unix ms from an ISO date (UTC; as `to`, through the end of that day), an ISO datetime
    (UTC unless it has an offset) or Unix milliseconds."""
    text = value.strip()
    try:
        if DIGITS.match(text):
            ms = int(text)
        elif _DATE.match(text):
            days = (date.fromisoformat(text) - _EPOCH.date()).days + (1 if end else 0)
            ms = min(days * usage.DAY_MS, MAX_MS)  # `to=9999-12-31`: through its last ms
        elif not text.isascii():
            ms = -1  # fromisoformat reads other scripts' digits too
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    except (ValueError, OverflowError):
        ms = -1
    if not 0 <= ms <= MAX_MS:
        raise BadRequest(
            f"'{name}' must be an ISO date (2024-05-01), an ISO datetime "
            f"(2024-05-01T12:00:00Z) or Unix milliseconds, from 1970 until the year 9999 ends; "
            f"got {value[:64]!r}.",
            param=name,
        )
    return ms


def time_range(request: web.Request) -> tuple[int | None, int | None]:
    """?from= and ?to= (exclusive), each None when not given."""
    q = request.query
    end = parse_time("to", q["to"], end=True) if "to" in q else None
    start = parse_time("from", q["from"], end=False) if "from" in q else None
    if start is not None and end is not None and start >= end:
        raise BadRequest("'from' must be before 'to'.", param="from")
    return start, end


async def usage_reply(request: web.Request, user_id: int | None, user: str | None) -> web.Response:
    """Usage between ?from= and ?to= (default: the last 7 days), grouped by ?group_by=."""
    group_by = request.query.get("group_by", "day")
    if group_by not in usage.GROUPS:
        groups = ", ".join(usage.GROUPS)
        raise BadRequest(f"'group_by' must be one of: {groups}.", param="group_by")
    start, end = time_range(request)
    end = now_ms() if end is None else end
    start = end - WEEK_MS if start is None else start
    if start >= end:
        raise BadRequest("'from' must be before 'to'.", param="from")
    # The calls of the last few ms count too, but a view polled by many clients must not
    # cost a transaction each: what was committed up to FRESH_S ago is fresh enough.
    await request.app[WRITER].flushed_within(FRESH_S)
    rows = await usage.report(
        request.app[READER], group_by=group_by, start_ms=start, end_ms=end, user_id=user_id
    )
    totals = {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0}
    credits = 0
    for row in rows:
        if "start" in row:
            row["start"] = reports.iso(row["start"])
        row["credits_decimal"] = format_amount(row["credits"])
        credits += row["credits"]
        for name in totals:
            totals[name] += row[name]
    return reply(
        {"object": "usage", "user": user, "group_by": group_by, "from": reports.iso(start),
         "to": reports.iso(end), "data": rows,
         "totals": {**totals, "credits": credits, "credits_decimal": format_amount(credits)}}
    )  # fmt: skip


def call_query(request: web.Request, user_id: int | None) -> tuple[reports.CallFilter, str | None]:
    """The filters of a calls listing (?status= ?model=provider/model ?from= ?to=) and ?cursor=."""
    q = request.query
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest("'status' must be one of: processing, success, failed.", param="status")
    provider = model = None
    if "model" in q:
        provider, sep, model = q["model"].partition("/")
        if not (sep and provider and model):
            raise BadRequest("'model' must be 'provider/model'.", param="model")
    cursor = q.get("cursor")
    if cursor is not None and not _CURSOR.match(cursor):
        raise BadRequest("'cursor' must be a call id from 'next_cursor'.", param="cursor")
    start, end = time_range(request)
    return reports.CallFilter(user_id, status, provider, model, start, end), cursor


def page_limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(LIMIT))
    if not (DIGITS.match(raw) and 1 <= int(raw) <= MAX_LIMIT):
        raise BadRequest(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.", param="limit")
    return int(raw)


async def calls_reply(request: web.Request, user_id: int | None) -> web.Response:
    """A page of calls, newest first: {"object": "list", "data": [...], "next_cursor": id|null}."""
    f, cursor = call_query(request, user_id)
    limit = page_limit(request)
    data, next_cursor = await reports.calls(request.app[READER], f, cursor=cursor, limit=limit)
    return reply({"object": "list", "data": data, "next_cursor": next_cursor})


async def listing_reply(request: web.Request, user_id: int | None) -> web.StreamResponse:
    """A page of calls as JSON, or with ?format=csv every matching call as a CSV download."""
    form = request.query.get("format", "json")
    if form == "json":
        return await calls_reply(request, user_id)
    if form != "csv":
        raise BadRequest("'format' must be json or csv.", param="format")
    if "limit" in request.query:
        raise BadRequest("format=csv exports every matching call; drop 'limit'.", param="limit")
    f, cursor = call_query(request, user_id)
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


async def call_reply(request: web.Request, user_id: int | None) -> web.Response:
    """One call; someone else's is as unknown as one that never was."""
    call_id = request.match_info["call_id"]
    found = await reports.call(request.app[READER], call_id, user_id)
    if found is None:
        raise NotFound(f"No call with id '{call_id}'.", code="call_not_found")
    return reply(found)


@api.get("/api/user/balance", ok=shapes.Balance)
async def user_balance(request: web.Request, caller: Principal) -> web.Response:
    """The caller's balance: the ledger's sum, what in-flight calls hold, what is left."""
    return reply({"user": caller.user_name, **balance(request.app, caller.user_id)})


@api.get("/api/user/usage", ok=shapes.Usage)
async def user_usage(
    request: web.Request, caller: Principal, query: shapes.UsageQuery
) -> web.Response:
    """The caller's usage between ?from= and ?to= (default: the last 7 days), grouped."""
    return await usage_reply(request, caller.user_id, caller.user_name)


@api.get("/api/user/calls", ok=shapes.CallList, csv=True)
async def user_calls(
    request: web.Request, caller: Principal, query: shapes.CallsQuery
) -> web.StreamResponse:
    """The caller's calls, newest first, a page at a time (or all of them as CSV)."""
    return await listing_reply(request, caller.user_id)


@api.get("/api/user/calls/{call_id}", ok=shapes.Call)
async def user_call(request: web.Request, caller: Principal) -> web.Response:
    """One of the caller's calls."""
    return await call_reply(request, caller.user_id)
