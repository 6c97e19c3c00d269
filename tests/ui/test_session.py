"""Dashboard sign-in without a browser: the cookie's attributes, its key, and what a session
may do (the user-key and admin-user APIs are exercised here over raw HTTP too)."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubproxy.config import Secret
from hubproxy.ui import session as sessions
from tests.conftest import Hub, HubFactory, add_key, make_settings


def jar_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # loopback IP


async def sign_in(s: aiohttp.ClientSession, hub: Hub, key: str, **headers: str) -> Any:
    async with s.get(hub.url + "/ui/login") as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
    assert token is not None
    form = {"csrf_token": token[1], "key": key}
    async with s.post(
        hub.url + "/ui/login", data=form, allow_redirects=False, headers=headers
    ) as resp:
        return resp.status, resp.headers.getall("Set-Cookie", [])


async def test_the_cookie_is_encrypted_httponly_strict_and_secure_behind_https(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory()
    async with jar_session() as s:
        status, cookies = await sign_in(s, hub, hub.key)
        assert status == 303
        [cookie] = [c for c in cookies if c.startswith(sessions.COOKIE + "=")]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be lost
        assert hub.key not in cookie and hub.key[3:] not in cookie
    async with jar_session() as s:
        _, cookies = await sign_in(s, hub, hub.key, **{"X-Forwarded-Proto": "https"})
        [cookie] = [c for c in cookies if c.startswith(sessions.COOKIE + "=")]
        assert "Secure" in cookie


async def test_a_bad_key_or_a_missing_form_token_signs_nobody_in(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with jar_session() as s:
        status, _ = await sign_in(s, hub, "hp-not-a-key")
        assert status == 401
        form = {"key": hub.key}
        async with s.post(hub.url + "/ui/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 403
        async with s.get(hub.url + "/api/user/balance") as resp:
            assert resp.status == 401
        async with s.get(hub.url + "/ui/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/ui/login"


def test_the_cookie_key_is_kept_0600_or_derived_from_the_master_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"providers": [{"name": "d", "type": "fake"}]})
    key = sessions.cookie_key(settings)
    path = settings.database.path.parent / sessions.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sessions.cookie_key(settings) == key and len(key) == 32  # kept across starts
    master = settings.auth.__class__(secret_key=Secret("correct horse battery staple"))
    derived = sessions.cookie_key(settings.__class__(database=settings.database, auth=master))
    assert len(derived) == 32 and derived != key
    other = settings.auth.__class__(secret_key=Secret("another master key"))
    assert sessions.cookie_key(settings.__class__(auth=other)) != derived


async def test_user_keys_are_the_callers_own(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    bob = add_key(hub.settings, "bob")

    async def call(method: str, path: str, key: str, json: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, hub.url + path, json=json,
                      headers={"Authorization": f"Bearer {key}"}) as resp,
        ):  # fmt: skip
            return resp.status, await resp.json()

    status, made = await call("POST", "/api/user/keys", hub.key, {"label": "ci"})
    assert status == 200 and made["key"].startswith(made["prefix"]) and made["label"] == "ci"
    status, listing = await call("GET", "/api/user/keys", hub.key)
    assert [k["label"] for k in listing["data"]] == ["ci", "test"]
    assert all("key" not in k and "key_hash" not in k for k in listing["data"])
    assert [k["current"] for k in listing["data"]] == [False, True]
    status, body = await call("DELETE", f"/api/user/keys/{made['id']}", bob)
    assert status == 404 and body["error"]["code"] == "key_not_found"
    status, body = await call("GET", "/api/user/keys", made["key"])
    assert status == 200  # bob could not revoke it
    status, body = await call("POST", "/api/user/keys", hub.key, {"label": "x", "user": "bob"})
    assert status == 422
    status, body = await call("DELETE", f"/api/user/keys/{made['id']}", hub.key)
    assert status == 200 and body["active"] is False
    status, _ = await call("GET", "/api/user/keys", made["key"])
    assert status == 401  # at once, in this process
    assert (await call("DELETE", "/api/user/keys/abc", hub.key))[0] == 404
    assert (await call("DELETE", "/api/user/keys/²", hub.key))[0] == 404  # a digit, not 0-9


@pytest.mark.parametrize("who", ["member", "admin"])
async def test_admin_users_create_role_and_grant_history(hub_factory: HubFactory, who: str) -> None:
    hub = await hub_factory()
    root = add_key(hub.settings, "root", "admin")
    key = hub.key if who == "member" else root

    async def call(method: str, path: str, json: Any = None, k: str = key) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, hub.url + path, json=json,
                      headers={"Authorization": f"Bearer {k}"}) as resp,
        ):  # fmt: skip
            return resp.status, await resp.json()

    status, made = await call("POST", "/api/admin/users", {"name": "carol", "role": "member"})
    if who == "member":
        assert status == 404 and made["error"]["code"] == "unknown_route"
        assert (await call("GET", "/api/admin/users/alice/grants"))[0] == 404
        assert (await call("PATCH", "/api/admin/users/alice", {"role": "admin"}))[0] == 404
        return
    assert status == 200 and made["name"] == "carol" and made["key"].startswith("hp-")
    assert (await call("GET", "/api/user/balance", k=made["key"]))[1]["user"] == "carol"
    assert (await call("POST", "/api/admin/users", {"name": "carol"}))[0] == 409
    assert (await call("POST", "/api/admin/users", {"name": "<b>"}))[0] == 400
    assert (await call("POST", "/api/admin/users", {"name": "dave", "role": "owner"}))[0] == 400
    status, body = await call("PATCH", "/api/admin/users/carol", {"role": "admin"})
    assert status == 200 and body["role"] == "admin"
    assert (await call("GET", "/api/admin/users", k=made["key"]))[0] == 200  # the key follows
    for amount, note in (("2.5", "welcome"), ("1", "<i>again</i>")):
        body = {"user": "carol", "amount": amount, "note": note}
        assert (await call("POST", "/api/admin/credits", body))[0] == 200
    status, history = await call("GET", "/api/admin/users/carol/grants")
    assert [(g["amount"], g["note"]) for g in history["data"]] == [
        (1_000_000, "<i>again</i>"), (2_500_000, "welcome"),
    ]  # fmt: skip
    status, keys = await call("GET", "/api/admin/users/carol/keys")
    assert [k["label"] for k in keys["data"]] == ["first key"]
    assert (await call("GET", "/api/admin/users/nobody/grants"))[0] == 404
