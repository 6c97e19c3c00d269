"""AIGNE Hub's v1 API: apps that sign each call with their ed25519 key, paid by subscription.

An app registers its public key (POST /api/app/register) and gets its DID. It calls as the
hub user "app:<did>" made at registration (store/apps.py), so its calls are recorded like
any other, with the app's DID as the call's app and x-app-user-did as its end user. A call
needs the app's subscription to be active (402 with the link to subscribe, else): the
subscription pays, so the call's credits are computed for its record but not debited. The
apps are served from memory, reloaded when the database's 'apps' revision moves; signatures
seen within their window are refused a second time (gateway/signatures.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import orjson
from aiohttp import web

from hubproxy.api import aigne_answers as answers
from hubproxy.api import aigne_common as common
from hubproxy.api import aigne_shapes as shapes
from hubproxy.api.middleware import PRINCIPAL_NAME
from hubproxy.api.schema import PUBLIC, Api, Security
from hubproxy.api.state import FOLLOWER, READER, SETTINGS, WRITER
from hubproxy.errors import BadRequest, NotFound, PaymentRequired, Unauthorized
from hubproxy.gateway import signatures
from hubproxy.gateway.auth import Principal
from hubproxy.store import apps
from hubproxy.store.clock import now_ms
from hubproxy.store.reader import Reader

api = Api(error=answers.AigneError, tag="aigne v1")
WEBHOOK_SIGNATURE = "x-payment-signature"  # hex HMAC-SHA256 of the body, "sha256=" optional
JSON = dict[str, Any]


class AppBook:
    """Registered apps by DID, and the signatures seen lately."""

    def __init__(self) -> None:
        self.by_did: dict[str, dict[str, Any]] = {}
        self.replay = signatures.ReplayCache()
        self._loading = asyncio.Lock()

    async def reload(self, reader: Reader) -> None:
        """Read every app again. One load at a time, so that a load begun before a write
        (the follower's) never lands after one begun after it (the webhook's own)."""
        async with self._loading:
            self.by_did = await apps.load(reader)


APPS = web.AppKey("aigne_apps", AppBook)


def install(app: web.Application) -> None:
    """Routes and the apps table; append after the app's resources (needs reader, follower)."""
    app[APPS] = AppBook()
    api.install(app)
    app.cleanup_ctx.append(_lifetime)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    book, reader = app[APPS], app[READER]
    await book.reload(reader)
    app[FOLLOWER].add("apps", partial(book.reload, reader))
    yield


async def _app(request: web.Request, did: str) -> dict[str, Any]:
    book = request.app[APPS]
    found = book.by_did.get(did)
    if found is None and "apps" in await request.app[FOLLOWER].refresh():
        found = book.by_did.get(did)  # registered a moment ago, by another process
    if found is None:
        raise Unauthorized(f"Unknown app {did[:64]!r}: register it first.", code="unknown_app")
    return found


async def signed(request: web.Request) -> tuple[dict[str, Any], signatures.Signed]:
    """The app a request is from, its signature checked (401: bad, expired or replayed)."""
    app = await _app(request, signatures.claimed_app(request.headers))
    key = signatures.parse_public_key(app["public_key"])
    raw = await request.read()
    proof = signatures.verify(request.headers, raw, key, time.time(), request.app[APPS].replay)
    request[PRINCIPAL_NAME] = apps.USER_PREFIX + proof.app_did
    return app, proof


async def subscribed(request: web.Request) -> common.Caller:
    """A signed call from an app whose subscription is active (402 with the link, else)."""
    app, proof = await signed(request)
    if not apps.is_active(app, now_ms()):
        raise PaymentRequired(
            "This app has no active subscription: subscribe to use AIGNE Hub.",
            code="subscription_required",
        )
    if app.get("user_id") is None:  # registered before its user was made: not usable yet
        raise Unauthorized("The app has no user yet; register it again.", code="unknown_app")
    principal = Principal(app["user_id"], apps.USER_PREFIX + proof.app_did, "member", None)
    return common.Caller(
        principal, app_id=proof.app_did, app_user=proof.user_did or None, billing="subscription"
    )


def _key(name: str, description: str) -> dict[str, str]:
    return {"type": "apiKey", "in": "header", "name": name, "description": description}


# A call signed with the app's ed25519 key (gateway/signatures.py says what is signed).
APP_SCHEMES = {
    "appId": _key("x-app-id", "The app's DID, as registered."),
    "appTimestamp": _key("x-timestamp", "Unix seconds; at most 600 s from the server's time."),
    "appSignature": _key(
        "x-component-sig",
        "0x and the hex of the app's ed25519 signature of the SHA3-256 digest of "
        "json-stable-stringify({appId, timestamp, data: body, userDid}). A signature is "
        "taken once.",
    ),
}
APP_USER_HEADER = {
    "name": "x-app-user-did", "in": "header", "required": False,
    "description": "The app's end user, recorded as the call's; signed as userDid.",
    "schema": {"type": "string"},
}  # fmt: skip
SIGNED = Security(signed, APP_SCHEMES, headers=(APP_USER_HEADER,))
SUBSCRIBED = Security(subscribed, APP_SCHEMES, headers=(APP_USER_HEADER,))


async def payment_system(request: web.Request) -> None:
    """The webhook's body is signed with the secret shared with the payment system (401)."""
    secret = request.app[SETTINGS].aigne.webhook_secret
    raw = await request.read()
    signatures.verify_webhook(
        raw, request.headers.get(WEBHOOK_SIGNATURE), secret.reveal().encode() if secret else b""
    )


PAYMENT_SYSTEM = Security(
    payment_system,
    {
        "paymentSignature": _key(
            WEBHOOK_SIGNATURE,
            'The hex HMAC-SHA256 of the body under the shared webhook secret ("sha256=" '
            "before it is optional).",
        )
    },
)


def reply(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


@api.post("/api/app/register", ok=answers.AppRegistered, auth=PUBLIC)
async def register(request: web.Request, body: shapes.AppRegistration) -> web.Response:
    """Register an app's public key; the answer is its DID and where to subscribe."""
    key = signatures.parse_public_key(body.publicKey)
    did = signatures.did_from_public_key(key)
    await request.app[WRITER].commit(*apps.register_ops(did, "0x" + key.hex()))
    await request.app[APPS].reload(request.app[READER])
    return reply({"id": did, "paymentLink": common.payment_link(request)})


@api.get("/api/app/status", ok=answers.AppStatus, auth=SIGNED, errors=(503,))
async def app_status(
    request: web.Request, caller: tuple[dict[str, Any], signatures.Signed]
) -> web.Response:
    """The calling app's subscription."""
    app, _ = caller
    until = app.get("subscription_until")
    return reply({
        "id": app["did"],
        "subscription": {
            "status": app["subscription_status"],
            "active": apps.is_active(app, now_ms()),
            "until": None if until is None else _iso(until),
        },
        "subscriptionDetailUrl": common.payment_link(request),
    })  # fmt: skip


@api.post("/api/app/subscription-webhook", ok=answers.WebhookAccepted, auth=PAYMENT_SYSTEM,
          errors=(404,))  # fmt: skip
async def subscription_webhook(
    request: web.Request, body: shapes.SubscriptionEvent
) -> web.Response:
    """The payment system's word on an app's subscription.

    {"appId", "status": none|active|canceled|past_due, "until": Unix ms or ISO 8601}; an app
    that is not registered is a 404."""
    did = body.appId
    until = _until(body.until)
    if did not in request.app[APPS].by_did:
        await request.app[FOLLOWER].refresh()  # registered a moment ago, by another process
    if did not in request.app[APPS].by_did:
        raise NotFound(f"Unknown app {did[:64]!r}.", code="unknown_app")
    await request.app[WRITER].commit(apps.subscribe(did, until, body.status))
    await request.app[APPS].reload(request.app[READER])
    return reply({"ok": True})


@api.post("/api/v1/chat/completions", ok=answers.AigneCompletionsReply, auth=SUBSCRIBED,
          errors=common.CALL_ERRORS, media=(common.EVENTS,))  # fmt: skip
async def v1_chat_completions(
    request: web.Request,
    caller: common.Caller,
    body: Annotated[JSON, shapes.AigneCompletionsRequest],
) -> web.StreamResponse:
    """Chat completions in AIGNE's flat camelCase; streamed when the client accepts SSE."""
    return await common.completions(request, caller, body)


@api.post("/api/v1/embeddings", ok=answers.AigneEmbeddings, auth=SUBSCRIBED,
          errors=common.CALL_ERRORS)  # fmt: skip
async def v1_embeddings(
    request: web.Request,
    caller: common.Caller,
    body: Annotated[JSON, shapes.AigneEmbeddingsRequest],
) -> web.StreamResponse:
    """Embeddings: {"model", "input": texts | {"input": texts, "modelOptions"}}."""
    return await common.embeddings(request, caller, body)


@api.post("/api/v1/image/generations", ok=answers.AigneImages, auth=SUBSCRIBED,
          errors=common.CALL_ERRORS)  # fmt: skip
async def v1_image_generations(
    request: web.Request, caller: common.Caller, body: Annotated[JSON, shapes.AigneImageRequest]
) -> web.StreamResponse:
    """Images, each as {base64, b64_json, b64Json, url}, with the call's usage."""
    return await common.image_generations(request, caller, body)


def _until(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
    raise BadRequest("'until' must be Unix milliseconds or an ISO 8601 time.", param="until")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
