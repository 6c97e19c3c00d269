"""AIGNE v1 over real HTTP: an app registers its key, signs each call (checked against an
independent signer: `cryptography`'s ed25519 and Python's sorted-key JSON), needs an active
subscription (set by the signed payment webhook or the database), and is recorded with
credits computed but not debited."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hubproxy.api import aigne_v1
from hubproxy.store import apps
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import apply
from tests.conftest import Hub, HubFactory

SECRET = "whsec-test-0123456789"
LINK = "https://pay.example/subscribe"
CHAT = {"model": "demo/echo", "messages": [{"role": "user", "content": "signed hello"}]}


class App:
    """An AIGNE app: its own key pair, signing as AIGNE's component call does."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = "0x" + raw.hex()
        self.did = ""

    def headers(self, body: Any, *, ts: int | None = None, user: str | None = "zUser1",
                key: Ed25519PrivateKey | None = None) -> dict[str, str]:  # fmt: skip
        ts = int(time.time()) if ts is None else ts
        signed: dict[str, Any] = {"appId": self.did, "timestamp": ts, "data": body or {}}
        if user is not None:
            signed["userDid"] = user
        text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        sig = (key or self.key).sign(hashlib.sha3_256(text.encode()).digest())
        out = {"x-app-id": self.did, "x-timestamp": str(ts), "x-component-sig": "0x" + sig.hex()}
        if user is not None:
            out["x-app-user-did"] = user
        return out


async def v1_hub(hub_factory: HubFactory) -> Hub:
    return await hub_factory(
        [{"name": "demo", "type": "fake", "models": ["echo"]}],
        billing={"mode": "credits", "rates": [{"model": "demo/echo", "input": "3", "output": "7"}]},
        aigne={"payment_link": LINK, "webhook_secret": SECRET},
        auth={"reload_interval_s": 0.05},
    )


async def post(hub: Hub, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "application/json", **headers}
    async with aiohttp.ClientSession() as s, s.post(hub.url + path, data=raw, headers=headers) as r:
        return r.status, orjson.loads(await r.read())


async def registered(hub: Hub) -> App:
    app = App()
    status, out = await post(hub, "/api/app/register", {"publicKey": app.public}, {})
    assert status == 200 and out["paymentLink"] == LINK
    app.did = out["id"]
    assert app.did.startswith("z")
    return app


async def webhook(hub: Hub, body: dict[str, Any], secret: str = SECRET) -> tuple[int, Any]:
    raw = orjson.dumps(body)
    sig = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return await post(hub, "/api/app/subscription-webhook", raw, {"x-payment-signature": sig})


async def test_signed_calls_pass_the_subscription_gate_and_are_not_debited(
    hub_factory: HubFactory,
) -> None:
    hub = await v1_hub(hub_factory)
    app = await registered(hub)
    status, out = await post(hub, "/api/v1/chat/completions", CHAT, app.headers(CHAT))
    assert status == 402 and out["error"]["type"] == "NOT_ENOUGH"
    assert out["error"]["link"] == LINK
    until = now_ms() + 86_400_000
    assert await webhook(hub, {"appId": app.did, "status": "active", "until": until}) == (
        200, {"ok": True})  # fmt: skip
    # (the same body in the same second is the same signature: a replay; so the user differs)
    status, out = await post(
        hub, "/api/v1/chat/completions", CHAT, app.headers(CHAT, user="zUser2")
    )
    assert status == 200 and out["text"] == "You said: signed hello"
    [row] = hub.calls()
    assert (row["app_id"], row["app_user"], row["billing"]) == (app.did, "zUser2", "subscription")
    assert row["credits"] == 3 * row["prompt_tokens"] + 7 * row["completion_tokens"] > 0
    assert hub.rows("SELECT * FROM credit_ledger WHERE kind = 'debit'") == []
    [user] = hub.rows("SELECT name FROM users WHERE id = ?", row["user_id"])
    assert user["name"] == "app:" + app.did
    status, out = await post(hub, "/api/app/status", {}, app.headers({}))
    assert status == 405  # status is a GET
    async with aiohttp.ClientSession() as s, s.get(
        hub.url + "/api/app/status", headers=app.headers({})
    ) as r:  # fmt: skip
        state = orjson.loads(await r.read())
    assert state["id"] == app.did and state["subscription"]["active"] is True
    # canceled by the payment system: the gate closes again
    assert (await webhook(hub, {"appId": app.did, "status": "canceled", "until": until}))[0] == 200
    status, _ = await post(hub, "/api/v1/chat/completions", CHAT, app.headers(CHAT, user="z3"))
    assert status == 402
    # set from the CLI's side (another process): the server follows the 'apps' revision
    conn = hub.db()
    try:
        apply(conn, [apps.subscribe(app.did, until)])
    finally:
        conn.close()
    await hub.eventually(lambda: apps.is_active(hub.app[aigne_v1.APPS].by_did[app.did], now_ms()))
    body = {"model": "demo/echo", "input": ["a", "b"]}
    status, out = await post(hub, "/api/v1/embeddings", body, app.headers(body))
    assert status == 200 and len(out["data"]) == 2


async def test_bad_signatures_are_refused(hub_factory: HubFactory) -> None:
    hub = await v1_hub(hub_factory)
    app = await registered(hub)
    await webhook(hub, {"appId": app.did, "status": "active", "until": now_ms() + 86_400_000})
    path = "/api/v1/chat/completions"
    headers = app.headers(CHAT)
    tampered = {**CHAT, "messages": [{"role": "user", "content": "changed"}]}
    cases = [
        (tampered, headers, "invalid_signature"),
        (CHAT, app.headers(CHAT, key=Ed25519PrivateKey.generate()), "invalid_signature"),
        (CHAT, app.headers(CHAT, ts=int(time.time()) - 601), "signature_expired"),
        (CHAT, {**headers, "x-app-user-did": "zSomeoneElse"}, "invalid_signature"),
        (CHAT, {k: v for k, v in headers.items() if k != "x-component-sig"}, "invalid_signature"),
        (CHAT, {**app.headers(CHAT), "x-app-id": "zUnknownApp"}, "unknown_app"),
    ]
    for body, sent, kind in cases:
        status, out = await post(hub, path, body, sent)
        assert (status, out["error"]["type"]) == (401, kind), (sent, out)
    assert (await post(hub, path, CHAT, headers))[0] == 200
    status, out = await post(hub, path, CHAT, headers)  # the same signature again
    assert (status, out["error"]["type"]) == (401, "signature_replayed")
    assert len(hub.calls()) == 1


async def test_bad_registrations_and_webhooks_are_4xx_in_aignes_shape(
    hub_factory: HubFactory,
) -> None:
    hub = await v1_hub(hub_factory)
    app = await registered(hub)
    for body in ({"publicKey": "0x1234"}, {}, b"[1]"):
        status, out = await post(hub, "/api/app/register", body, {})
        assert status == 400 and {"message", "type", "timestamp"} <= set(out["error"])
    good = {"appId": app.did, "status": "active", "until": now_ms() + 1000}
    assert (await webhook(hub, good, secret="wrong"))[0] == 401
    assert (await webhook(hub, {**good, "status": "forever"}))[0] == 400
    assert (await webhook(hub, {**good, "until": "tomorrow"}))[0] == 400
    assert (await webhook(hub, {**good, "appId": "zNobody"}))[0] == 404
    body = {"model": "demo/echo", "prompt": "x", "size": "7x7"}
    await webhook(hub, good | {"until": now_ms() + 86_400_000})
    status, out = await post(hub, "/api/v1/image/generations", body, app.headers(body))
    assert status == 400 and "timestamp" in out["error"]
