"""The caller's own hub keys under /api/user/keys: list, create (the key shown once), revoke.
Another user's key is as unknown as one that never was."""

from __future__ import annotations

from aiohttp import web

from hubproxy.api import shapes
from hubproxy.api.schema import Api
from hubproxy.api.state import FOLLOWER, READER, WRITER
from hubproxy.api.user import reply
from hubproxy.errors import NotFound
from hubproxy.gateway import auth
from hubproxy.store import accounts, reports

api = Api()


@api.get("/api/user/keys", ok=shapes.OwnKeyList)
async def list_keys(request: web.Request, caller: auth.Principal) -> web.Response:
    """The caller's keys, newest first; `current` marks the one this request came with."""
    data = await reports.keys(request.app[READER], caller.user_id)
    for key in data:
        key["current"] = key["id"] == caller.key_id
    return reply({"object": "list", "data": data})


@api.post("/api/user/keys", ok=shapes.KeyCreated)
async def create_key(
    request: web.Request, caller: auth.Principal, body: shapes.NewKey
) -> web.Response:
    """A new key for the caller. Its only appearance in clear is this answer."""
    label = body.label.strip()
    key = auth.new_key()
    prefix = auth.visible_prefix(key)
    await request.app[WRITER].commit(
        accounts.create_key(caller.user_id, auth.hash_key(key), prefix, label)
    )
    await request.app[FOLLOWER].refresh()  # usable at once, here and in the list
    created = next(
        k for k in await reports.keys(request.app[READER], caller.user_id)
        if k["prefix"] == prefix and k["active"]
    )  # fmt: skip
    return reply({**created, "key": key, "current": False})


@api.delete("/api/user/keys/{key_id}", ok=shapes.OwnKey)
async def revoke_key(request: web.Request, caller: auth.Principal) -> web.Response:
    """Revoke one of the caller's keys; it stops working (and ends its sessions) at once."""
    raw = request.match_info["key_id"]
    key_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    reader = request.app[READER]
    if key_id is None or await reports.key_owner(reader, key_id) != caller.user_id:
        raise NotFound(f"No key with id '{raw}'.", code="key_not_found")
    await request.app[WRITER].commit(accounts.revoke_key(key_id))
    await request.app[FOLLOWER].refresh()
    found = next(k for k in await reports.keys(reader, caller.user_id) if k["id"] == key_id)
    return reply({**found, "current": key_id == caller.key_id})
