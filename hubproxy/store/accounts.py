"""Users and hub keys in the database: the writes (as writer ops) and the reads behind the CLI."""

from __future__ import annotations

import sqlite3

from hubproxy.store.clock import now_ms
from hubproxy.store.writer import Op


def create_user(name: str, role: str) -> Op:
    return "INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)", (name, role, now_ms())


def create_key(user_id: int, key_hash: str, prefix: str, label: str) -> Op:
    return (
        "INSERT INTO api_keys (user_id, label, prefix, key_hash, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (user_id, label, prefix, key_hash, now_ms()),
    )


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
