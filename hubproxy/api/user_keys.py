"""The caller's own hub keys under /api/user/keys: list, create (the key shown once), revoke.
Another user's key is as unknown as one that never was."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api.common import authenticate, read_json
from hubproxy.api.state import FOLLOWER, READER, WRITER
from hubproxy.api.user import check_params, reply
from hubproxy.billing.pricing import only
from hubproxy.errors import BadRequest, NotFound
from hubproxy.gateway import auth
from hubproxy.store import accounts, reports

routes = web.RouteTableDef()

MAX_LABEL = 100
KEY_FIELDS = frozenset({"label"})


def _label(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_LABEL:
        raise BadRequest(
            f"'label' must be a string of at most {MAX_LABEL} characters.", param="label"
        )
    return value.strip()


@routes.get("/api/user/keys")
async def list_keys(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    check_params(request, frozenset())
    data = await reports.keys(request.app[READER], principal.user_id)
    for key in data:
        key["current"] = key["id"] == principal.key_id
    return reply({"object": "list", "data": data})


@routes.post("/api/user/keys")
async def create_key(request: web.Request) -> web.Response:
    """A new key for the caller. Its only appearance in clear is this answer."""
    principal = await authenticate(request)
    check_params(request, frozenset())
    body = await read_json(request)
    only(body, KEY_FIELDS)
    label = _label(body.get("label", ""))
    key = auth.new_key()
    prefix = auth.visible_prefix(key)
    await request.app[WRITER].commit(
        accounts.create_key(principal.user_id, auth.hash_key(key), prefix, label)
    )
    await request.app[FOLLOWER].refresh()  # usable at once, here and in the list
    created = next(
        k for k in await reports.keys(request.app[READER], principal.user_id)
        if k["prefix"] == prefix and k["active"]
    )  # fmt: skip
    return reply({**created, "key": key, "current": False})


@routes.delete("/api/user/keys/{key_id}")
async def revoke_key(request: web.Request) -> web.Response:
    """Revoke one of the caller's keys; it stops working (and ends its sessions) at once."""
    principal = await authenticate(request)
    check_params(request, frozenset())
    raw = request.match_info["key_id"]
    key_id = int(raw) if raw.isdigit() and len(raw) <= 18 else None
    reader = request.app[READER]
    if key_id is None or await reports.key_owner(reader, key_id) != principal.user_id:
        raise NotFound(f"No key with id '{raw}'.", code="key_not_found")
    await request.app[WRITER].commit(accounts.revoke_key(key_id))
    await request.app[FOLLOWER].refresh()
    found = next(k for k in await reports.keys(reader, principal.user_id) if k["id"] == key_id)
    return reply({**found, "current": key_id == principal.key_id})
