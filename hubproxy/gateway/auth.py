"""Hub API keys: minting, hashing, and the in-memory cache the request path checks."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hubproxy.errors import Unauthorized

ROLES = ("owner", "admin", "member")
KEY_PREFIX = "hp-"
VISIBLE = 10  # characters kept in clear to recognise a key: "hp-" and 7 more


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's owner (or an AIGNE v1 app's own user: no key, it signs)."""

    user_id: int
    user_name: str
    role: str
    key_id: int | None

    @property
    def is_admin(self) -> bool:
        return self.role in ("owner", "admin")


def new_key() -> str:
    """A new key: 256 random bits. Shown once; only its hash and prefix are stored."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256, hex. Keys are random, not passwords: a fast hash is enough, a salt is moot."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE]


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer KEY` or `x-api-key: KEY`."""
    value = headers.get("Authorization")
    if value:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return headers.get("x-api-key") or None


class KeyCache:
    """Every active key by hash, replaced whole when the database's auth revision moves: a
    lookup is one hash and one dict access, with no query."""

    def __init__(self) -> None:
        self._by_hash: dict[str, Principal] = {}

    def replace(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._by_hash = {
            row["key_hash"]: Principal(row["user_id"], row["user_name"], row["role"], row["id"])
            for row in rows
        }

    def __len__(self) -> int:
        return len(self._by_hash)

    def by_hash(self, key_hash: str) -> Principal | None:
        """The owner of an active key by its hash (a browser session holds only the hash)."""
        return self._by_hash.get(key_hash)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        key = presented_key(headers)
        if key is None:
            raise Unauthorized(
                "Missing API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'.",
                code="missing_api_key",
            )
        principal = self._by_hash.get(hash_key(key))
        if principal is None:
            raise Unauthorized("Invalid or revoked API key.")
        return principal
