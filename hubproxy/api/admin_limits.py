"""Rate limits and key scopes over HTTP, for admins and owners (to a member: 404): a key's
scope and limits (GET, PATCH /api/admin/keys/{id}; PUT .../limits) and a user's limits (PUT
/api/admin/users/{name}/limits). A change applies in this process at once and in every other
within the reload interval (the 'auth' revision)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from hubproxy.api import limits_shapes as shapes
from hubproxy.api.admin import user_named
from hubproxy.api.schema import Api
from hubproxy.api.state import FOLLOWER, READER, WRITER
from hubproxy.api.user import reply
from hubproxy.errors import BadRequest, NotFound
from hubproxy.limits import fields
from hubproxy.store import accounts, db
from hubproxy.store.clock import now_ms

api = Api()


async def _key(request: web.Request) -> dict[str, Any]:
    raw = request.match_info["key_id"]
    key_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    row = None if key_id is None else await db.key_settings(request.app[READER], key_id)
    if row is None:
        raise NotFound(f"No key with id {raw!r}.", code="key_not_found")
    return row


def _limits(body: shapes.LimitsChange) -> dict[str, int | None]:
    """All three limits: a field left out goes back to the default, like one sent as null."""
    sent = msgspec.structs.asdict(body)
    return {name: fields.limit(sent[name], name) for name in accounts.LIMIT_COLUMNS}


async def _applied(request: web.Request) -> None:
    await request.app[FOLLOWER].refresh()  # the next call here sees it


@api.get("/api/admin/keys/{key_id}", ok=shapes.KeyScope, admin=True)
async def get_key(request: web.Request) -> web.Response:
    """A key's scope and limits."""
    return reply(fields.key_view(await _key(request)))


@api.patch("/api/admin/keys/{key_id}", ok=shapes.KeyScope, admin=True)
async def update_key(request: web.Request, body: shapes.ScopeChange) -> web.Response:
    """Set a key's expiry, allow-list or cap.

    "expires_at" or "ttl", "models", "budget"; null clears one. Fields left out stay as they
    are."""
    key = await _key(request)
    cols = fields.scope_update(msgspec.to_builtins(body), now_ms())
    if not cols:
        raise BadRequest("Nothing to change: send expires_at, ttl, models or budget.", param="body")
    await request.app[WRITER].commit(accounts.update_key(key["id"], cols))
    await _applied(request)
    return reply(fields.key_view(await _key(request)))


@api.put("/api/admin/keys/{key_id}/limits", ok=shapes.KeyScope, admin=True)
async def key_limits(request: web.Request, body: shapes.LimitsChange) -> web.Response:
    """Set a key's rate limits (all three)."""
    key = await _key(request)
    await request.app[WRITER].commit(accounts.update_key(key["id"], _limits(body)))
    await _applied(request)
    return reply(fields.key_view(await _key(request)))


@api.put("/api/admin/users/{name}/limits", ok=shapes.UserLimits, admin=True)
async def user_limits(request: web.Request, body: shapes.LimitsChange) -> web.Response:
    """Set a user's rate limits (all three), over all their keys."""
    user = await user_named(request, request.match_info["name"])
    await request.app[WRITER].commit(accounts.set_user_limits(user["id"], _limits(body)))
    await _applied(request)
    row = await db.user_limits(request.app[READER], user["name"])
    assert row is not None
    return reply({"id": row["id"], "name": row["name"], "limits": fields.limits_view(row)})
