"""AIGNE v1 signed component calls: app DIDs, the ed25519 signature check with its replay cache,
and the payment system's webhook signature. Pure (no I/O): the face looks the key up.

An AIGNE app (a blocklet) signs each call with its ed25519 key (AIGNE Hub's
`blocklets/core/api/src/libs/auth.ts`, `verifyRemoteComponentCall`):
- headers `x-app-id` (the app's DID), `x-timestamp` (Unix seconds), `x-component-sig`
  (0x + hex of the 64-byte signature) and `x-app-user-did`;
- the signed bytes are the raw 32-byte SHA3-256 digest (not its hex text) of the UTF-8 of
  `json-stable-stringify({appId, timestamp, data: body || {}, userDid})`, where timestamp is
  a number and userDid is left out when the header is absent ("" when present but empty);
- the call is refused when |now - timestamp| > 600 s.
hubproxy adds what AIGNE lacks: the same signed content seen twice inside its window is refused.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hubproxy.errors import BadRequest, ServiceUnavailable, Unauthorized
from hubproxy.gateway.stable_json import stable_stringify

WINDOW_S = 600  # AIGNE's TOKEN_EXPIRES_IN_SECONDS
# The DID type of an app key: role application, key ed25519, hash SHA3, as two bytes
# (ArcBlock's abt-did-spec). The DID is 'z' + base58btc(type || sha3(pk)[:20] || checksum).
APP_DID_TYPE = bytes((0x0C, 0x01))
_HEX = re.compile(r"^(?:0x)?([0-9a-fA-F]*)$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")


def did_from_public_key(public_key: bytes) -> str:
    """The app DID of an ed25519 public key (32 bytes)."""
    if len(public_key) != 32:
        raise BadRequest("an ed25519 public key is 32 bytes.", param="publicKey")
    body = APP_DID_TYPE + hashlib.sha3_256(public_key).digest()[:20]
    checksum = hashlib.sha3_256(body).digest()[:4]
    return "z" + base58.b58encode(body + checksum).decode("ascii")


def parse_public_key(text: Any) -> bytes:
    """A public key as AIGNE sends it ("0x" + 64 hex digits) → its 32 bytes; else 400."""
    raw = _hex(text, 32)
    if raw is None:
        raise BadRequest(
            "'publicKey' must be an ed25519 public key: 0x and 64 hex digits.",
            param="publicKey",
            code="invalid_public_key",
        )
    return raw


def signed_digest(app_id: str, timestamp: int, data: Any, user_did: str | None) -> bytes:
    """The 32 bytes an app signs."""
    falsy = data is None or data is False or data == "" or (_is_number(data) and data == 0)
    signed: dict[str, Any] = {
        "appId": app_id,
        "timestamp": timestamp,
        "data": {} if falsy else data,
    }
    if user_did is not None:
        signed["userDid"] = user_did
    return hashlib.sha3_256(stable_stringify(signed).encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Signed:
    """Who a verified call is from. `user_did` is None when the header was absent."""

    app_did: str
    user_did: str | None
    timestamp: int


class ReplayCache:
    """Signed contents seen within the window. Memory is bounded: entries leave when their
    timestamp's window has passed, and past `max_entries` live ones a new signed call is
    refused (503) rather than an old one forgotten, which would reopen its replay."""

    __slots__ = ("_expiry", "_seen", "max_entries", "window_s")

    def __init__(self, *, window_s: int = WINDOW_S, max_entries: int = 200_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: dict[bytes, int] = {}  # digest → the second after which it may go
        self._expiry: list[tuple[int, bytes]] = []  # a heap of the same

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, digest: bytes, timestamp: int, now: int) -> None:
        """Record `digest`; refuse (401) one that is already there."""
        self._forget(now)
        if digest in self._seen:
            raise Unauthorized(
                "This signature was used already; sign each call anew.",
                code="signature_replayed",
            )
        if len(self._seen) >= self.max_entries:
            raise ServiceUnavailable(
                "Too many signed calls in the last 10 minutes; retry later.",
                code="replay_cache_full",
            )
        expires = timestamp + self.window_s
        self._seen[digest] = expires
        heapq.heappush(self._expiry, (expires, digest))

    def _forget(self, now: int) -> None:
        while self._expiry and self._expiry[0][0] < now:
            _, digest = heapq.heappop(self._expiry)
            self._seen.pop(digest, None)


def claimed_app(headers: Mapping[str, str]) -> str:
    """The app DID a call claims to be from (x-app-id), for looking up its key; 401 if none."""
    app_id = headers.get("x-app-id")
    if not app_id:
        raise _invalid("Missing required headers x-component-sig/x-app-id/x-timestamp.")
    return app_id


def verify(
    headers: Mapping[str, str],
    body: bytes,
    app_public_key: bytes,
    now: float,
    replay: ReplayCache | None = None,
) -> Signed:
    """Check a v1 call's signature (headers as received, the raw body bytes) against the app's
    key, at Unix time `now`. Any failure is a 401: invalid_signature, signature_expired or
    signature_replayed. With `replay`, the call's signed content is recorded there."""
    sig_text, app_id, ts_text = (
        headers.get("x-component-sig"), headers.get("x-app-id"), headers.get("x-timestamp"),
    )  # fmt: skip
    if not sig_text or not app_id or not ts_text:
        raise _invalid("Missing required headers x-component-sig/x-app-id/x-timestamp.")
    if did_from_public_key(app_public_key) != app_id:
        raise _invalid("x-app-id does not match the app's public key.")
    if not _DIGITS.match(ts_text.strip()):
        raise _invalid("x-timestamp must be whole Unix seconds.")
    timestamp = int(ts_text)
    if abs(now - timestamp) > WINDOW_S:
        raise Unauthorized(
            "The signature expired: x-timestamp is more than 600 seconds from now.",
            code="signature_expired",
        )
    signature = _hex(sig_text.strip(), 64)
    if signature is None:
        raise _invalid("x-component-sig must be 0x and 128 hex digits.")
    data = _body(body)
    user_did = headers.get("x-app-user-did")  # None when absent, "" when empty
    digest = signed_digest(app_id, timestamp, data, user_did)
    try:
        Ed25519PublicKey.from_public_bytes(app_public_key).verify(signature, digest)
    except InvalidSignature:
        raise _invalid("The signature does not match the request.") from None
    if replay is not None:
        replay.admit(digest, timestamp, int(now))
    return Signed(app_id, user_did, timestamp)


def verify_webhook(body: bytes, signature: str | None, secret: bytes) -> None:
    """The payment system signs each webhook body with HMAC-SHA256 under a shared secret and
    sends the hex digest (optionally prefixed "sha256="). Compared in constant time; 401 if
    it is missing or wrong. An empty secret accepts nothing."""
    if not secret or not signature:
        raise _invalid("Missing or unusable webhook signature.")
    given = signature.strip().removeprefix("sha256=").lower()
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
        raise _invalid("The webhook signature does not match its body.")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _body(body: bytes) -> Any:
    """The body as JavaScript's JSON.parse reads it (so integers of any size, as stable_json
    then rounds them to doubles); an empty body is {} as Express gives it."""
    if not body.strip():
        return {}
    try:
        return json.loads(body, parse_constant=_no_constant)
    except ValueError:
        raise BadRequest("The request body is not valid JSON.", code="invalid_json") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _hex(text: Any, size: int) -> bytes | None:
    match = _HEX.match(text) if isinstance(text, str) else None
    if match is None or len(match.group(1)) != 2 * size:
        return None
    return bytes.fromhex(match.group(1))


def _invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="invalid_signature")
