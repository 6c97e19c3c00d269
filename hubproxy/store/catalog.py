"""The control plane's SQL: providers, sealed credentials, catalogue rows and aliases.

Writes are writer ops (one unit commits whole, or not at all); reads come in two forms over
the same statements: blocking (the CLI) and asynchronous (the server's reader).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader

PROVIDER_COLUMNS = (
    "name", "type", "base_url", "headers", "api_version", "connect_timeout_s",
    "idle_timeout_s", "enabled",
)  # fmt: skip
MODEL_COLUMNS = ("provider", "model", "type", "display_name", "context_window", "enabled")
CREDENTIAL_COLUMNS = ("label", "weight", "enabled")

_READS = {
    "providers": "SELECT * FROM providers ORDER BY name",
    "credentials": (
        "SELECT c.*, p.name AS provider FROM provider_credentials c "
        "JOIN providers p ON p.id = c.provider_id ORDER BY p.name, c.label"
    ),
    "models": "SELECT * FROM catalog_models ORDER BY provider, model",
    "aliases": "SELECT name, targets FROM model_aliases ORDER BY name",
}


@dataclass(frozen=True, slots=True)
class Rows:
    """Every control-plane row, as plain dicts (credentials still sealed)."""

    providers: list[dict[str, Any]] = field(default_factory=list)
    credentials: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)


def _rows(raw: Mapping[str, Sequence[Any]]) -> Rows:
    def dicts(name: str) -> list[dict[str, Any]]:
        return [dict(zip(r.keys(), r, strict=True)) for r in raw[name]]

    providers = dicts("providers")
    for p in providers:
        p["headers"] = orjson.loads(p["headers"])
        p["enabled"] = bool(p["enabled"])
    models = dicts("models")
    for m in models:
        m["enabled"] = bool(m["enabled"])
    credentials = dicts("credentials")
    for c in credentials:
        c["enabled"] = bool(c["enabled"])
    aliases = {str(r[0]): list(orjson.loads(r[1])) for r in raw["aliases"]}
    return Rows(providers, credentials, models, aliases)


def read(conn: sqlite3.Connection) -> Rows:
    """Everything, in one read transaction (the CLI)."""
    conn.execute("BEGIN")
    try:
        return _rows({name: conn.execute(sql).fetchall() for name, sql in _READS.items()})
    finally:
        conn.execute("COMMIT")


async def read_async(conn: Reader) -> Rows:
    """Everything, through the server's reader. Not one transaction (the reader is shared):
    a change made between two of these reads bumps the revision again, and is reloaded."""
    raw: dict[str, Sequence[Any]] = {}
    for name, sql in _READS.items():
        async with conn.execute(sql) as cur:
            raw[name] = list(await cur.fetchall())
    return _rows(raw)


def insert_provider(pid: str, values: Mapping[str, Any]) -> Op:
    now = now_ms()
    cols = ", ".join(PROVIDER_COLUMNS)
    marks = ", ".join("?" for _ in PROVIDER_COLUMNS)
    return (
        f"INSERT INTO providers (id, {cols}, created_at, updated_at) VALUES (?, {marks}, ?, ?)",
        (pid, *(_db(values[c]) for c in PROVIDER_COLUMNS), now, now),
    )


def update_provider(pid: str, changes: Mapping[str, Any]) -> Op:
    return _update("providers", pid, changes, PROVIDER_COLUMNS)


def delete_provider(pid: str, name: str) -> list[Op]:
    """The provider, its credentials (by cascade) and its catalogue rows."""
    return [
        ("DELETE FROM catalog_models WHERE provider = ?", (name,)),
        ("DELETE FROM providers WHERE id = ?", (pid,)),
    ]


def insert_credential(
    cid: str, provider_id: str, *, label: str, weight: int, sealed: Any, hint: str
) -> Op:
    now = now_ms()
    return (
        "INSERT INTO provider_credentials (id, provider_id, label, weight, nonce, ciphertext, "
        "key_id, hint, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (cid, provider_id, label, weight, sealed.nonce, sealed.ciphertext, sealed.key_id, hint,
         now, now),
    )  # fmt: skip


def update_credential(cid: str, changes: Mapping[str, Any]) -> Op:
    return _update("provider_credentials", cid, changes, CREDENTIAL_COLUMNS)


def enable_credential(cid: str, enabled: bool) -> Op:
    """Enable (with its reported state reset) or disable a credential by hand."""
    return (
        "UPDATE provider_credentials SET enabled = ?, state = 'active', last_error = NULL, "
        "resting_until = NULL, updated_at = ? WHERE id = ?",
        (int(enabled), now_ms(), cid),
    )


def reseal_credential(cid: str, *, sealed: Any, hint: str | None = None) -> Op:
    """A new ciphertext: a new key (PATCH), or the same key under a new master key."""
    sql = "UPDATE provider_credentials SET nonce = ?, ciphertext = ?, key_id = ?, updated_at = ?"
    params: list[Any] = [sealed.nonce, sealed.ciphertext, sealed.key_id, now_ms()]
    if hint is not None:
        sql += ", hint = ?, state = 'active', last_error = NULL, resting_until = NULL"
        params.append(hint)
    return sql + " WHERE id = ?", (*params, cid)


def report_state(
    cid: str, *, state: str, last_error: str | None, resting_until: int | None,
    last_used_at: int | None,
) -> Op:  # fmt: skip
    """What a server saw of a credential, for `credentials list` (does not bump revisions)."""
    return (
        "UPDATE provider_credentials SET state = ?, last_error = ?, resting_until = ?, "
        "last_used_at = ? WHERE id = ?",
        (state, last_error, resting_until, last_used_at, cid),
    )


def delete_credential(cid: str) -> Op:
    return "DELETE FROM provider_credentials WHERE id = ?", (cid,)


def insert_model(mid: str, values: Mapping[str, Any]) -> Op:
    now = now_ms()
    cols = ", ".join(MODEL_COLUMNS)
    marks = ", ".join("?" for _ in MODEL_COLUMNS)
    return (
        f"INSERT INTO catalog_models (id, {cols}, created_at, updated_at) "
        f"VALUES (?, {marks}, ?, ?)",
        (mid, *(_db(values[c]) for c in MODEL_COLUMNS), now, now),
    )


def update_model(mid: str, changes: Mapping[str, Any]) -> Op:
    return _update("catalog_models", mid, changes, MODEL_COLUMNS)


def delete_model(mid: str) -> Op:
    return "DELETE FROM catalog_models WHERE id = ?", (mid,)


def replace_aliases(aliases: Mapping[str, Sequence[str]]) -> list[Op]:
    """The whole alias document, replaced in one unit."""
    now = now_ms()
    ops: list[Op] = [("DELETE FROM model_aliases", ())]
    for name, targets in aliases.items():
        ops.append(
            (
                "INSERT INTO model_aliases (name, targets, updated_at) VALUES (?, ?, ?)",
                (name, orjson.dumps(list(targets)).decode(), now),
            )
        )
    return ops


def _update(table: str, row_id: str, changes: Mapping[str, Any], allowed: Sequence[str]) -> Op:
    names = [c for c in changes if c in allowed]
    assert len(names) == len(changes), f"not columns of {table}: {set(changes) - set(names)}"
    sets = ", ".join(f"{c} = ?" for c in names)
    params = [_db(changes[c]) for c in names]
    return f"UPDATE {table} SET {sets}, updated_at = ? WHERE id = ?", (*params, now_ms(), row_id)


def _db(value: Any) -> Any:
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return int(value)
    return value
