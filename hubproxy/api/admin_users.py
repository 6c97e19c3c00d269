"""Managing people under /api/admin: create a user (with a first key, shown once), change a
role, a user's keys and grant history. Admins and owners only; to a member none of it exists."""

from __future__ import annotations

import re

from aiohttp import web

from hubproxy.api.admin import admin, user_named
from hubproxy.api.common import read_json
from hubproxy.api.state import FOLLOWER, READER, WRITER
from hubproxy.api.user import check_params, page_limit, reply
from hubproxy.billing.pricing import only
from hubproxy.errors import BadRequest
from hubproxy.gateway import auth
from hubproxy.store import accounts, reports

routes = web.RouteTableDef()

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
CREATE_FIELDS = frozenset({"name", "role"})
ROLE_FIELDS = frozenset({"role"})


def _role(value: object, caller: auth.Principal) -> str:
    if value not in auth.ROLES:
        raise BadRequest("'role' must be one of: owner, admin, member.", param="role")
    if value == "owner" and caller.role != "owner":
        raise BadRequest("Only an owner can make another owner.", param="role")
    return str(value)


@routes.post("/api/admin/users")
async def create_user(request: web.Request) -> web.Response:
    caller = await admin(request)
    check_params(request, frozenset())
    body = await read_json(request)
    only(body, CREATE_FIELDS)
    name = body.get("name")
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise BadRequest(
            "'name' must be 1 to 64 letters, digits or . _ @ -, starting with a letter or digit.",
            param="name",
        )
    role = _role(body.get("role", "member"), caller)
    reader = request.app[READER]
    if await reports.user_by_name(reader, name) is not None:
        raise BadRequest(
            f"A user named '{name}' exists already.", code="user_exists", param="name", status=409
        )
    await request.app[WRITER].commit(accounts.create_user(name, role))
    user = await user_named(request, name)
    key = auth.new_key()
    await request.app[WRITER].commit(
        accounts.create_key(user["id"], auth.hash_key(key), auth.visible_prefix(key), "first key")
    )
    await request.app[FOLLOWER].refresh()
    return reply({**user, "key": key})


@routes.patch("/api/admin/users/{name}")
async def set_role(request: web.Request) -> web.Response:
    caller = await admin(request)
    check_params(request, frozenset())
    body = await read_json(request)
    only(body, ROLE_FIELDS)
    user = await user_named(request, request.match_info["name"])
    role = _role(body.get("role"), caller)
    if user["role"] == "owner" and caller.role != "owner":
        raise BadRequest("Only an owner can change an owner's role.", param="role")
    await request.app[WRITER].commit(accounts.set_role(user["id"], role))
    await request.app[FOLLOWER].refresh()  # the keys carry the role: the next call sees it
    return reply({**user, "role": role})


@routes.get("/api/admin/users/{name}/keys")
async def user_keys(request: web.Request) -> web.Response:
    await admin(request)
    check_params(request, frozenset())
    user = await user_named(request, request.match_info["name"])
    return reply({"object": "list", "data": await reports.keys(request.app[READER], user["id"])})


@routes.get("/api/admin/users/{name}/grants")
async def grant_history(request: web.Request) -> web.Response:
    """Grants, adjustments and refunds of one user, newest first (?limit=, default 50)."""
    await admin(request)
    check_params(request, frozenset({"limit"}))
    user = await user_named(request, request.match_info["name"])
    rows = await reports.grants(request.app[READER], user["id"], page_limit(request))
    return reply({"object": "list", "user": user["name"], "data": rows})
