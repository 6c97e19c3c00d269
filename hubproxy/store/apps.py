"""AIGNE v1 apps in the database: registration and subscriptions as writer ops, and their reads."""

from __future__ import annotations

import sqlite3
from typing import Any

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader

STATUSES = ("none", "active", "canceled", "past_due")
_COLUMNS = (
    "did, public_key, created_at, subscription_status, subscription_until, updated_at, user_id"
)
USER_PREFIX = "app:"  # an app calls as the hub user named "app:<did>"


def register(did: str, public_key_hex: str) -> Op:
    """Add an app; registering the same key again changes nothing (AIGNE answers the same id)."""
    now = now_ms()
    return (
        "INSERT INTO apps (did, public_key, created_at, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (did) DO NOTHING",
        (did, public_key_hex.lower(), now, now),
    )


def register_ops(did: str, public_key_hex: str) -> list[Op]:
    """Register an app and the hub user it calls as ("app:<did>", a member with no keys: its
    v1 calls are recorded under it), in one unit of writes."""
    now = now_ms()
    user = USER_PREFIX + did
    return [
        register(did, public_key_hex),
        ("INSERT INTO users (name, role, created_at) VALUES (?, 'member', ?) "
         "ON CONFLICT (name) DO NOTHING", (user, now)),
        ("UPDATE apps SET user_id = (SELECT id FROM users WHERE name = ?), updated_at = ? "
         "WHERE did = ? AND user_id IS NULL", (user, now, did)),
    ]  # fmt: skip


def subscribe(did: str, until_ms: int | None, status: str = "active") -> Op:
    """Set an app's subscription (from the CLI, the admin API or the payment webhook)."""
    if status not in STATUSES:
        raise ValueError(f"subscription status must be one of {', '.join(STATUSES)}")
    return (
        "UPDATE apps SET subscription_status = ?, subscription_until = ?, updated_at = ? "
        "WHERE did = ?",
        (status, until_ms, now_ms(), did),
    )


def is_active(app: dict[str, Any], now: int) -> bool:
    """Whether an app (a row of `app`/`apps`) may make v1 calls at Unix ms `now`."""
    until = app.get("subscription_until")
    return app.get("subscription_status") == "active" and until is not None and until > now


def app(conn: sqlite3.Connection, did: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM apps WHERE did = ?", (did,)).fetchone()
    return None if row is None else dict(zip(row.keys(), row, strict=True))


def apps(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM apps ORDER BY created_at, did").fetchall()
    return [dict(zip(r.keys(), r, strict=True)) for r in rows]


async def load(conn: Reader) -> dict[str, dict[str, Any]]:
    """Every app by DID, for the server's in-memory table (reloaded when revision 'apps' moves)."""
    async with conn.execute(f"SELECT {_COLUMNS} FROM apps") as cur:
        return {r["did"]: dict(zip(r.keys(), r, strict=True)) for r in await cur.fetchall()}
