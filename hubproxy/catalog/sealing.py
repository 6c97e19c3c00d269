"""Provider keys sealed at rest: AES-256-GCM under the master key, bound to their row.

Each write draws a fresh 96-bit nonce. The associated data names the credential and its
provider, so a ciphertext copied onto another row no longer opens. Each row also keeps the id
of the master key that sealed it (the first 8 hex digits of its SHA-256), so a wrong key is
told apart from a damaged row. There is no plaintext fallback anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hubproxy.config import ConfigError, SecretsSettings

NONCE_BYTES = 12
KEY_BYTES = 32
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class SealError(ConfigError):
    """A sealed key cannot be opened (no master key, the wrong one, or a damaged row); the
    message says which and what to do. A ConfigError: the server must not start with it."""


class MasterKey:
    """The 32-byte key; never shown in a repr. `id` names it without revealing it."""

    __slots__ = ("_aead", "id")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise ConfigError(f"a master key is {KEY_BYTES} bytes, not {len(raw)}")
        self._aead = AESGCM(raw)
        self.id = hashlib.sha256(raw).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"

    def seal(self, plaintext: str, *, credential_id: str, provider_id: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        data = self._aead.encrypt(nonce, plaintext.encode(), _aad(credential_id, provider_id))
        return Sealed(nonce=nonce, ciphertext=data, key_id=self.id)

    def open(self, sealed: Sealed, *, credential_id: str, provider_id: str) -> str:
        if sealed.key_id != self.id:
            raise SealError(
                f"credential {credential_id} was sealed under master key {sealed.key_id}, but "
                f"the key given is {self.id}: the wrong key. Fix: set HUBPROXY_SECRET_KEY (or "
                "[secrets] key_file) to the key it was sealed with."
            )
        try:
            raw = self._aead.decrypt(
                sealed.nonce, sealed.ciphertext, _aad(credential_id, provider_id)
            )
        except InvalidTag:
            raise SealError(
                f"credential {credential_id} does not decrypt under master key {self.id}, "
                "which sealed it: the row was altered or moved. Fix: remove the credential "
                "and add its key again."
            ) from None
        return raw.decode()


@dataclass(frozen=True, slots=True)
class Sealed:
    nonce: bytes
    ciphertext: bytes
    key_id: str


def _aad(credential_id: str, provider_id: str) -> bytes:
    return f"hubproxy/credential/v1\x00{credential_id}\x00{provider_id}".encode()


def new_key() -> str:
    """A new master key, as base64 text (what `hubproxy secrets gen-key` prints)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(text: str, where: str) -> MasterKey:
    """A key written as 64 hex digits or as base64 (standard or URL-safe) of 32 bytes."""
    text = text.strip()
    raw: bytes | None = None
    if _HEX.match(text):
        raw = bytes.fromhex(text)
    else:
        try:
            raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != KEY_BYTES:
        raise ConfigError(
            f"{where}: not a master key: expected {KEY_BYTES} bytes as 64 hex digits or base64. "
            "Fix: make one with `hubproxy secrets gen-key`."
        )
    return MasterKey(raw)


def master_key(settings: SecretsSettings) -> MasterKey | None:
    """$HUBPROXY_SECRET_KEY, else the [secrets] key_file, else None."""
    if settings.key is not None:
        return parse_key(settings.key.reveal(), "$HUBPROXY_SECRET_KEY")
    if settings.key_file is not None:
        try:
            text = settings.key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"[secrets] key_file {settings.key_file}: cannot read it ({exc.strerror}). "
                "Fix the path or its permissions."
            ) from None
        return parse_key(text, f"[secrets] key_file {settings.key_file}")
    return None


def require(key: MasterKey | None, sealed_rows: int) -> MasterKey:
    """The key, or a refusal that says none was given while rows need one."""
    if key is None:
        raise SealError(
            f"{sealed_rows} provider credential(s) are sealed, and no master key is given. "
            "Fix: set HUBPROXY_SECRET_KEY or [secrets] key_file to the key they were sealed "
            "with (a new one is made by `hubproxy secrets gen-key`)."
        )
    return key


def mask(key: str) -> str:
    """What is shown of a stored key: its first 3 and last 4 characters (`sk-…abcd`); a key
    too short to hide anything in between shows nothing."""
    if len(key) < 12:
        return "…"
    return f"{key[:3]}…{key[-4:]}"
