"""AIGNE v1 signatures: the DID and signature vectors, an independent signer (PyNaCl), and every
way a signed call is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from hubproxy.errors import BadRequest, HubError, ServiceUnavailable, Unauthorized
from hubproxy.gateway import signatures
from hubproxy.gateway.stable_json import js_number, stable_stringify

DATA = Path(__file__).resolve().parents[1] / "data" / "aigne"
VECTORS = json.loads((DATA / "v1_signatures.json").read_text(encoding="utf-8"))

# ArcBlock's abt-did-spec vector, whose key pair is in forge-js's wallet tests
# (forge/forge-wallet/tests/index.spec.js).
FORGE_SK = bytes.fromhex(
    "D67C071B6F51D2B61180B9B1AA9BE0DD0704619F0E30453AB4A592B036EDE644"
    "E4852B7091317E3622068E62A5127D1FB0D4AE2FC50213295E10652D2F0ABFC7"
)
FORGE_PK = bytes.fromhex("E4852B7091317E3622068E62A5127D1FB0D4AE2FC50213295E10652D2F0ABFC7")
FORGE_DID = "zNKtCNqYWLYWYW3gWRA1vnRykfCBZYHZvzKr"
FORGE_SIG = (
    "8122c608f61b04f6b574f005dc8e0463d393a7fb50e0426bca587b20778a8a9f"
    "6376bab87bc3983b0a5f1c9581f6d94162317c715a3c1c0f086be1e514399109"
)
NOW = 1_767_225_600


def test_did_from_public_key_matches_the_spec_vector() -> None:
    assert signatures.did_from_public_key(FORGE_PK) == FORGE_DID
    assert signatures.parse_public_key("0x" + FORGE_PK.hex().upper()) == FORGE_PK


@pytest.mark.parametrize("bad", ["", "0x", "0x1234", "zz" * 32, FORGE_PK.hex() + "00", 12, None])
def test_a_malformed_public_key_is_a_400(bad: Any) -> None:
    with pytest.raises(BadRequest):
        signatures.parse_public_key(bad)


def test_forge_signature_covers_the_raw_sha3_digest() -> None:
    """forge-js signs "data to sign" as sha3_256 → 32 raw bytes → ed25519; PyNaCl, an
    independent ed25519, gives the same signature for the digest, and not for its hex text."""
    key = nacl.signing.SigningKey(FORGE_SK[:32])
    assert bytes(key.verify_key) == FORGE_PK
    digest = hashlib.sha3_256(b"data to sign").digest()
    assert key.sign(digest).signature.hex() == FORGE_SIG
    assert key.sign(digest.hex().encode()).signature.hex() != FORGE_SIG


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_stable_stringify_is_byte_exact_with_the_npm_package(vector: dict[str, Any]) -> None:
    headers = vector["headers"]
    body = vector["body"].encode()
    data = json.loads(body) if body else {}
    user = headers.get("x-app-user-did")
    signed: dict[str, Any] = {"appId": VECTORS["app_id"], "timestamp": int(headers["x-timestamp"]),
                              "data": data}  # fmt: skip
    if user is not None:
        signed["userDid"] = user
    assert stable_stringify(signed) == vector["stable_stringify"]
    digest = signatures.signed_digest(VECTORS["app_id"], int(headers["x-timestamp"]), data, user)
    assert digest.hex() == vector["sha3_256"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_signatures_made_by_node_verify(vector: dict[str, Any]) -> None:
    headers = vector["headers"]
    now = int(headers["x-timestamp"]) + 5
    signed = signatures.verify(headers, vector["body"].encode(), FORGE_PK, now)
    assert signed.app_did == FORGE_DID
    assert signed.user_did == headers.get("x-app-user-did")


def test_js_numbers() -> None:
    cases = {1.0: "1", 1e21: "1e+21", 1e20: "100000000000000000000", 1e-7: "1e-7",
             1.5e-6: "0.0000015", -0.0: "0", 0.1: "0.1", 2**60: "1152921504606847000",
             2**53 + 1: "9007199254740992", 123.456e-9: "1.23456e-7",
             -2.5e30: "-2.5e+30"}  # fmt: skip
    for value, text in cases.items():
        assert js_number(value) == text, value


def test_stable_stringify_escapes_as_javascript() -> None:
    text = 'a\u2028b\u2029c\x7f\x00\x1f"\\\ud800é'
    assert stable_stringify(text) == '"a\u2028b\u2029c\x7f\\u0000\\u001f\\"\\\\\\ud800é"'
    assert stable_stringify({"b": [1, None, True], "a": {}}) == '{"a":{},"b":[1,null,true]}'


def _signed_call(
    key: nacl.signing.SigningKey,
    body: bytes,
    *,
    timestamp: int = NOW,
    user: str | None = "z1User",
) -> dict[str, str]:
    """Headers signed by PyNaCl, with the reference stringifier's digest."""
    app = signatures.did_from_public_key(bytes(key.verify_key))
    data = json.loads(body) if body else {}
    digest = signatures.signed_digest(app, timestamp, data, user)
    headers = {"x-app-id": app, "x-timestamp": str(timestamp),
               "x-component-sig": "0x" + key.sign(digest).signature.hex()}  # fmt: skip
    if user is not None:
        headers["x-app-user-did"] = user
    return headers


BODY = b'{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"Hi \xe2\x9c\x93"}]}'


def _refused(headers: dict[str, str], body: bytes, pk: bytes, now: float = NOW) -> HubError:
    with pytest.raises(HubError) as caught:
        signatures.verify(headers, body, pk, now)
    return caught.value


def test_a_pynacl_signed_call_is_accepted_and_tampering_refused() -> None:
    key = nacl.signing.SigningKey(b"\x07" * 32)
    pk = bytes(key.verify_key)
    headers = _signed_call(key, BODY)
    assert signatures.verify(headers, BODY, pk, NOW + 600).user_did == "z1User"

    tampered = BODY.replace(b"Hi", b"Ho")
    assert _refused(headers, tampered, pk).code == "invalid_signature"
    # the same JSON with other whitespace and key order is the same signed content
    parsed = json.loads(BODY)
    reordered = json.dumps({"messages": parsed["messages"], "model": parsed["model"]}, indent=2)
    assert reordered.encode() != BODY
    assert signatures.verify(headers, reordered.encode(), pk, NOW).app_did == headers["x-app-id"]
    # userDid is signed: dropping, emptying or changing the header breaks the signature
    for user in (None, "", "z1Other"):
        changed = {k: v for k, v in headers.items() if k != "x-app-user-did"}
        if user is not None:
            changed["x-app-user-did"] = user
        assert _refused(changed, BODY, pk).code == "invalid_signature"
    shifted = {**headers, "x-timestamp": str(NOW + 1)}
    assert _refused(shifted, BODY, pk).code == "invalid_signature"


def test_an_empty_user_header_is_signed_as_an_empty_string() -> None:
    key = nacl.signing.SigningKey(b"\x08" * 32)
    headers = _signed_call(key, BODY, user="")
    assert signatures.verify(headers, BODY, bytes(key.verify_key), NOW).user_did == ""
    absent = _signed_call(key, BODY, user=None)
    assert signatures.verify(absent, BODY, bytes(key.verify_key), NOW).user_did is None


def test_a_wrong_key_is_refused() -> None:
    key, other = nacl.signing.SigningKey(b"\x01" * 32), nacl.signing.SigningKey(b"\x02" * 32)
    headers = _signed_call(key, BODY)
    err = _refused(headers, BODY, bytes(other.verify_key))  # app id is not that key's DID
    assert (err.status, err.code) == (401, "invalid_signature")
    # a signature by another key, under the right app id and key
    forged = {**headers, "x-component-sig": _signed_call(other, BODY)["x-component-sig"]}
    assert _refused(forged, BODY, bytes(key.verify_key)).code == "invalid_signature"


def test_a_stale_or_future_timestamp_is_refused() -> None:
    key = nacl.signing.SigningKey(b"\x03" * 32)
    pk = bytes(key.verify_key)
    headers = _signed_call(key, BODY)
    assert signatures.verify(headers, BODY, pk, NOW - 600).app_did
    for now in (NOW + 601, NOW - 601):
        err = _refused(headers, BODY, pk, now)
        assert (err.status, err.code) == (401, "signature_expired")


@pytest.mark.parametrize(
    "change",
    [
        {"x-component-sig": None},
        {"x-app-id": None},
        {"x-timestamp": None},
        {"x-timestamp": "12abc"},
        {"x-timestamp": "-5"},
        {"x-component-sig": "0x1234"},
        {"x-component-sig": "not hex"},
    ],
)
def test_malformed_headers_are_401(change: dict[str, str | None]) -> None:
    key = nacl.signing.SigningKey(b"\x04" * 32)
    headers: dict[str, str] = _signed_call(key, BODY)
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    err = _refused(headers, BODY, bytes(key.verify_key))
    assert (err.status, err.code) == (401, "invalid_signature")


def test_a_body_that_is_not_json_is_a_400() -> None:
    key = nacl.signing.SigningKey(b"\x05" * 32)
    headers = _signed_call(key, b"")
    with pytest.raises(BadRequest):
        signatures.verify(headers, b"{nope", bytes(key.verify_key), NOW)
    assert signatures.verify(headers, b"", bytes(key.verify_key), NOW).app_did


def test_a_replay_is_refused_within_the_window_and_memory_is_bounded() -> None:
    key = nacl.signing.SigningKey(b"\x06" * 32)
    pk = bytes(key.verify_key)
    cache = signatures.ReplayCache(max_entries=2)
    first = _signed_call(key, BODY)
    signatures.verify(first, BODY, pk, NOW, cache)
    with pytest.raises(Unauthorized) as caught:
        signatures.verify(first, BODY, pk, NOW + 599, cache)
    assert caught.value.code == "signature_replayed"
    # a refused (bad) signature does not enter the cache
    bad = {**_signed_call(key, BODY, timestamp=NOW + 1), "x-app-user-did": "z1Else"}
    with pytest.raises(Unauthorized):
        signatures.verify(bad, BODY, pk, NOW, cache)
    assert len(cache) == 1
    signatures.verify(_signed_call(key, BODY, timestamp=NOW + 1), BODY, pk, NOW, cache)
    with pytest.raises(ServiceUnavailable):  # full of live entries: refuse, forget nothing
        signatures.verify(_signed_call(key, BODY, timestamp=NOW + 2), BODY, pk, NOW, cache)
    # once the first signature's window has passed it is forgotten (and expired anyway)
    late = _signed_call(key, BODY, timestamp=NOW + 601)
    signatures.verify(late, BODY, pk, NOW + 601, cache)
    assert len(cache) == 2


def test_webhook_signature() -> None:
    secret, body = b"shared-secret", b'{"appId":"z1","status":"active"}'
    good = hmac.new(secret, body, hashlib.sha256).hexdigest()
    signatures.verify_webhook(body, good, secret)
    signatures.verify_webhook(body, "sha256=" + good.upper(), secret)
    for sig, key in ((good, b"other"), (good[:-1] + "0", secret), ("", secret), (None, secret),
                     (good, b""), ("é" * 64, secret)):  # fmt: skip
        with pytest.raises(Unauthorized):
            signatures.verify_webhook(body, sig, key)
    with pytest.raises(Unauthorized):
        signatures.verify_webhook(body + b" ", good, secret)
