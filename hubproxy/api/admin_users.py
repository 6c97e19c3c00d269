"""Managing people under /api/admin: create a user (with a first key, shown once), change a
role, a user's keys and grant history. Admins and owners only; to a member none of it exists."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api import shapes
from hubproxy.api.admin import user_named
from hubproxy.api.schema import Api
from hubproxy.api.state import FOLLOWER, READER, WRITER
from hubproxy.api.user import page_limit, reply
from hubproxy.errors import BadRequest
from hubproxy.gateway import auth
from hubproxy.store import accounts, reports

api = Api()


def _role(value: str, caller: auth.Principal) -> str:
    if value == "owner" and caller.role != "owner":
        raise BadRequest("Only an owner can make another owner.", param="role")
    return value


@api.post("/api/admin/users", ok=shapes.UserCreated, admin=True, errors=(409,))
async def create_user(
    request: web.Request, caller: auth.Principal, body: shapes.NewUser
) -> web.Response:
    """Create a user with a first key, which this answer shows once."""
    name = body.name
    role = _role(body.role, caller)
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


@api.patch("/api/admin/users/{name}", ok=shapes.User, admin=True)
async def set_role(
    request: web.Request, caller: auth.Principal, body: shapes.RoleChange
) -> web.Response:
    """Change a user's role; the next call with their keys has it."""
    user = await user_named(request, request.match_info["name"])
    role = _role(body.role, caller)
    if user["role"] == "owner" and caller.role != "owner":
        raise BadRequest("Only an owner can change an owner's role.", param="role")
    await request.app[WRITER].commit(accounts.set_role(user["id"], role))
    await request.app[FOLLOWER].refresh()  # the keys carry the role: the next call sees it
    return reply({**user, "role": role})


@api.get("/api/admin/users/{name}/keys", ok=shapes.KeyList, admin=True)
async def user_keys(request: web.Request) -> web.Response:
    """A user's keys, newest first: prefix and label, never the key."""
    user = await user_named(request, request.match_info["name"])
    return reply({"object": "list", "data": await reports.keys(request.app[READER], user["id"])})


@api.get("/api/admin/users/{name}/grants", ok=shapes.GrantList, admin=True)
async def grant_history(request: web.Request, query: shapes.GrantsQuery) -> web.Response:
    """Grants, adjustments and refunds of one user, newest first (?limit=, default 50)."""
    user = await user_named(request, request.match_info["name"])
    rows = await reports.grants(request.app[READER], user["id"], page_limit(request))
    return reply({"object": "list", "user": user["name"], "data": rows})
