"""Rate limits and key scopes over HTTP, for admins and owners (to a member: 404): a key's
scope and limits (GET, PATCH /api/admin/keys/{id}; PUT .../limits) and a user's limits (PUT
/api/admin/users/{name}/limits). A change applies in this process at once and in every other
within the reload interval (the 'auth' revision)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hubproxy.api.admin import admin, user_named
from hubproxy.api.common import read_json
from hubproxy.api.state import FOLLOWER, READER, WRITER
from hubproxy.api.user import check_params, reply
from hubproxy.billing.pricing import only
from hubproxy.errors import BadRequest, NotFound
from hubproxy.limits import fields
from hubproxy.store import accounts, db
from hubproxy.store.clock import now_ms

routes = web.RouteTableDef()

LIMIT_FIELDS = frozenset(accounts.LIMIT_COLUMNS)
SCOPE_FIELDS = frozenset({"expires_at", "ttl", "models", "budget"})


async def _key(request: web.Request) -> dict[str, Any]:
    raw = request.match_info["key_id"]
    key_id = int(raw) if raw.isdigit() and len(raw) <= 18 else None
    row = None if key_id is None else await db.key_settings(request.app[READER], key_id)
    if row is None:
        raise NotFound(f"No key with id {raw!r}.", code="key_not_found")
    return row


def _limits(body: dict[str, Any]) -> dict[str, int | None]:
    """All three limits: a field left out goes back to the default, like one sent as null."""
    only(body, LIMIT_FIELDS)
    return {name: fields.limit(body.get(name), name) for name in accounts.LIMIT_COLUMNS}


async def _applied(request: web.Request) -> None:
    await request.app[FOLLOWER].refresh()  # the next call here sees it


@routes.get("/api/admin/keys/{key_id}")
async def get_key(request: web.Request) -> web.Response:
    await admin(request)
    check_params(request, frozenset())
    return reply(fields.key_view(await _key(request)))


@routes.patch("/api/admin/keys/{key_id}")
async def update_key(request: web.Request) -> web.Response:
    """Set a key's expiry ("expires_at" or "ttl"), allow-list ("models") or cap ("budget");
    null clears one. Fields left out stay as they are."""
    await admin(request)
    check_params(request, frozenset())
    key = await _key(request)
    body = await read_json(request)
    only(body, SCOPE_FIELDS)
    cols = fields.scope_update(body, now_ms())
    if not cols:
        raise BadRequest("Nothing to change: send expires_at, ttl, models or budget.", param="body")
    await request.app[WRITER].commit(accounts.update_key(key["id"], cols))
    await _applied(request)
    return reply(fields.key_view(await _key(request)))


@routes.put("/api/admin/keys/{key_id}/limits")
async def key_limits(request: web.Request) -> web.Response:
    await admin(request)
    check_params(request, frozenset())
    key = await _key(request)
    limits = _limits(await read_json(request))
    await request.app[WRITER].commit(accounts.update_key(key["id"], limits))
    await _applied(request)
    return reply(fields.key_view(await _key(request)))


@routes.put("/api/admin/users/{name}/limits")
async def user_limits(request: web.Request) -> web.Response:
    await admin(request)
    check_params(request, frozenset())
    user = await user_named(request, request.match_info["name"])
    limits = _limits(await read_json(request))
    await request.app[WRITER].commit(accounts.set_user_limits(user["id"], limits))
    await _applied(request)
    row = await db.user_limits(request.app[READER], user["name"])
    assert row is not None
    return reply({"id": row["id"], "name": row["name"], "limits": fields.limits_view(row)})
