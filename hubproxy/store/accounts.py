"""Users and hub keys in the database: the writes (as writer ops) and the reads behind the CLI."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op

LIMIT_COLUMNS = ("rpm", "tpm", "concurrency")  # on api_keys and on users; NULL: the default
SCOPE_COLUMNS = ("expires_at", "models", "budget", "budget_period")  # on api_keys
# One key's scope and limits, and its owner's limits (the admin API reads it too).
KEY_SETTINGS = (
    "SELECT k.id, u.name AS user, k.label, k.prefix, k.revoked_at, k.expires_at, k.models, "
    "k.budget, k.budget_period, k.rpm, k.tpm, k.concurrency FROM api_keys k "
    "JOIN users u ON u.id = k.user_id WHERE k.id = ?"
)
USER_LIMITS = "SELECT id, name, role, rpm, tpm, concurrency FROM users WHERE name = ?"


def create_user(name: str, role: str) -> Op:
    return "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)", (name, role, now_ms())


def create_key(
    user_id: int, key_hash: str, prefix: str, label: str, scope: Mapping[str, Any] | None = None
) -> Op:
    """A new key; `scope` sets SCOPE_COLUMNS (expiry, models, budget) from the start."""
    fields = {c: v for c, v in (scope or {}).items() if c in SCOPE_COLUMNS}
    names = "".join(f", {c}" for c in fields)
    return (
        f"INSERT INTO api_keys (user_id, label, prefix, key_hash, created_at{names}) "
        f"VALUES (?, ?, ?, ?, ?{', ?' * len(fields)})",
        (user_id, label, prefix, key_hash, now_ms(), *fields.values()),
    )


def update_key(key_id: int, fields: Mapping[str, Any]) -> Op:
    """Set a key's scope or limit columns (a value of None: no expiry, any model, no cap, or
    the default limit)."""
    bad = set(fields) - set(SCOPE_COLUMNS) - set(LIMIT_COLUMNS)
    if bad or not fields:
        raise ValueError(f"not a key scope or limit column: {sorted(bad)}")
    sets = ", ".join(f"{c} = ?" for c in fields)
    return f"UPDATE api_keys SET {sets} WHERE id = ?", (*fields.values(), key_id)


def set_user_limits(user_id: int, limits: Mapping[str, int | None]) -> Op:
    """Set a user's limit columns (None: the default)."""
    if not limits or set(limits) - set(LIMIT_COLUMNS):
        raise ValueError(f"not a user limit column: {sorted(limits)}")
    sets = ", ".join(f"{c} = ?" for c in limits)
    return f"UPDATE users SET {sets} WHERE id = ?", (*limits.values(), user_id)


def revoke_key(key_id: int) -> Op:
    return (
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now_ms(), key_id),
    )


def user_by_name(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, name, role, created_at FROM users WHERE name = ?", (name,)
    ).fetchone()
    return row


def key_by_hash(conn: sqlite3.Connection, key_hash: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, prefix FROM api_keys WHERE key_hash = ?", (key_hash,)
    ).fetchone()
    return row


def key_by_id(conn: sqlite3.Connection, key_id: int) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, prefix, revoked_at FROM api_keys WHERE id = ?", (key_id,)
    ).fetchone()
    return row


def users(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT id, name, role, created_at FROM users ORDER BY id").fetchall()


def keys(conn: sqlite3.Connection, user: str | None = None) -> list[sqlite3.Row]:
    sql = (
        "SELECT k.id, u.name AS user, k.label, k.prefix, k.created_at, k.revoked_at "
        "FROM api_keys k JOIN users u ON u.id = k.user_id"
    )
    if user is None:
        return conn.execute(sql + " ORDER BY k.id").fetchall()
    return conn.execute(sql + " WHERE u.name = ? ORDER BY k.id", (user,)).fetchall()


def set_role(user_id: int, role: str) -> Op:
    return "UPDATE users SET role = ? WHERE id = ?", (role, user_id)


def key_settings(conn: sqlite3.Connection, key_id: int) -> dict[str, Any] | None:
    row = conn.execute(KEY_SETTINGS, (key_id,)).fetchone()
    return None if row is None else dict(zip(row.keys(), row, strict=True))


def user_limits(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(USER_LIMITS, (name,)).fetchone()
    return None if row is None else dict(zip(row.keys(), row, strict=True))
