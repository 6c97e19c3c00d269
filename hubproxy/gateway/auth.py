"""Hub API keys: minting, hashing, and the in-memory cache the request path checks."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from hubproxy.errors import Unauthorized
from hubproxy.store.clock import now_ms

ROLES = ("owner", "admin", "member")
KEY_PREFIX = "hp-"
VISIBLE = 10  # characters kept in clear to recognise a key: "hp-" and 7 more


@dataclass(frozen=True, slots=True)
class Scope:
    """What a key may do beyond its owner's rights: until when, which models (globs over
    `provider/model`), and how many micro-credits per UTC day or month."""

    expires_at: int | None = None  # Unix ms
    models: tuple[str, ...] = ()  # empty: any model
    budget: int | None = None  # micro-credits per period
    period: str = "day"  # 'day' | 'month'
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        expires_at: int | None = None,
        models: Iterable[str] = (),
        budget: int | None = None,
        period: str | None = None,
    ) -> Scope:
        globs = tuple(models)
        pattern = (
            re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs)) if globs else None
        )
        return cls(expires_at, globs, budget, period or "day", pattern)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Scope:
        models = orjson.loads(row["models"]) if row.get("models") else ()
        return cls.of(row.get("expires_at"), models, row.get("budget"), row.get("budget_period"))

    def expired(self, now: int) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def allows(self, model: str) -> bool:
        """Whether `provider/model` matches one of the globs (case-sensitive), or any is."""
        return self._pattern is None or self._pattern.fullmatch(model) is not None


UNSCOPED = Scope()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's owner (or an AIGNE v1 app's own user: no key, it signs), and
    the key's scope."""

    user_id: int
    user_name: str
    role: str
    key_id: int | None
    scope: Scope = UNSCOPED

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
            row["key_hash"]: Principal(
                row["user_id"], row["user_name"], row["role"], row["id"], Scope.from_row(row)
            )
            for row in rows
        }

    def __len__(self) -> int:
        return len(self._by_hash)

    def by_hash(self, key_hash: str) -> Principal | None:
        """The owner of an active key by its hash (a browser session holds only the hash);
        None once the key has expired."""
        principal = self._by_hash.get(key_hash)
        if principal is None or principal.scope.expired(now_ms()):
            return None
        return principal

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
        expires_at = principal.scope.expires_at
        if expires_at is not None and now_ms() >= expires_at:
            when = datetime.fromtimestamp(expires_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            raise Unauthorized(f"This API key expired at {when} UTC.", code="key_expired")
        return principal
