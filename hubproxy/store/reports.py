"""The reads behind the user and admin views: calls by page and filter, as JSON rows or CSV,
users with their key counts, and rates. Never on the request path."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubproxy.money import format_amount
from hubproxy.store.reader import Reader


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Which calls: each field None means any. Times are Unix ms, `end_ms` exclusive."""

    user_id: int | None = None
    status: str | None = None
    provider: str | None = None
    model: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


_CALLS = (
    "SELECT c.id, c.request_id, u.name AS user, c.provider, c.model, c.type, c.stream, "
    "c.status, c.prompt_tokens, c.completion_tokens, c.total_tokens, c.usage_estimated, "
    "c.credits, c.duration_ms, c.ttfb_ms, c.upstream_status, c.error, c.created_at "
    "FROM model_calls c LEFT JOIN users u ON u.id = c.user_id"
)
# The columns of a CSV export, in order; the same names as a call's JSON fields.
CSV_FIELDS = (
    "id", "created_at", "user", "request_id", "model", "type", "stream", "status",
    "prompt_tokens", "completion_tokens", "total_tokens", "usage_estimated", "credits",
    "credits_decimal", "duration_ms", "ttfb_ms", "upstream_status", "error",
)  # fmt: skip
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def iso(ms: int | None) -> str | None:
    """Unix ms as ISO 8601 UTC with milliseconds: 2024-05-01T12:00:00.000Z."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _call(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "request_id": row["request_id"],
        "user": row["user"],
        "model": f"{row['provider']}/{row['model']}",
        "type": row["type"],
        "stream": bool(row["stream"]),
        "status": row["status"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        "usage_estimated": bool(row["usage_estimated"]),
        "credits": row["credits"],
        "credits_decimal": format_amount(row["credits"]),
        "duration_ms": row["duration_ms"],
        "ttfb_ms": row["ttfb_ms"],
        "upstream_status": row["upstream_status"],
        "error": row["error"],
        "created_at": iso(row["created_at"]),
    }


def _where(f: CallFilter, cursor: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("c.user_id = ?", f.user_id),
        ("c.status = ?", f.status),
        ("c.provider = ?", f.provider),
        ("c.model = ?", f.model),
        ("c.created_at >= ?", f.start_ms),
        ("c.created_at < ?", f.end_ms),
        ("c.id < ?", cursor),  # ids sort by time: the page after `cursor`, newest first
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


async def calls(
    conn: Reader, f: CallFilter, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of calls, newest first, after `cursor` (the last id of the previous page), and
    the cursor of the next page (None on the last one)."""
    where, params = _where(f, cursor)
    sql = f"{_CALLS}{where} ORDER BY c.id DESC LIMIT ?"
    async with conn.execute(sql, (*params, limit + 1)) as cur:
        rows = list(await cur.fetchall())
    page = [_call(r) for r in rows[:limit]]
    return page, (page[-1]["id"] if len(rows) > limit else None)


async def call(conn: Reader, call_id: str, user_id: int | None) -> dict[str, Any] | None:
    """One call by id; with `user_id`, only if it is that user's (else None, as if unknown)."""
    sql = _CALLS + " WHERE c.id = ?" + (" AND c.user_id = ?" if user_id is not None else "")
    params = (call_id,) if user_id is None else (call_id, user_id)
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    return None if row is None else _call(row)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA) else text


def csv_text(rows: list[dict[str, Any]], *, header: bool = False) -> str:
    """Calls as CSV lines (RFC 4180 quoting by the csv module), optionally with the header."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_FIELDS)
    writer.writerows([_cell(row[name]) for name in CSV_FIELDS] for row in rows)
    return out.getvalue()


async def csv_pages(
    conn: Reader, f: CallFilter, *, cursor: str | None, page_size: int
) -> AsyncGenerator[str, None]:
    """Every matching call as CSV, page by page: the header with the first page, then one
    chunk per page, so an export of any size holds one page in memory."""
    first = True
    while True:
        page, cursor = await calls(conn, f, cursor=cursor, limit=page_size)
        yield csv_text(page, header=first)
        first = False
        if cursor is None:
            return


async def user_by_name(conn: Reader, name: str) -> dict[str, Any] | None:
    async with conn.execute("SELECT id, name, role FROM users WHERE name = ?", (name,)) as cur:
        row = await cur.fetchone()
    return None if row is None else {"id": row["id"], "name": row["name"], "role": row["role"]}


async def users(conn: Reader) -> list[dict[str, Any]]:
    """Every user with the number of keys they hold that are not revoked."""
    sql = (
        "SELECT u.id, u.name, u.role, u.created_at, (SELECT count(*) FROM api_keys k "
        "WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS keys FROM users u ORDER BY u.id"
    )
    async with conn.execute(sql) as cur:
        rows = await cur.fetchall()
    return [
        {"id": r["id"], "name": r["name"], "role": r["role"], "created_at": iso(r["created_at"]),
         "keys": r["keys"]}
        for r in rows
    ]  # fmt: skip


async def rates(conn: Reader) -> list[dict[str, Any]]:
    """Every rate as stored (decimal strings of credits), by model."""
    sql = (
        "SELECT provider, model, type, input, output, cached_input, per_image, "
        "per_image_variants, per_1m_chars, per_second, per_mb, updated_at "
        "FROM model_rates ORDER BY provider, model, type"
    )
    async with conn.execute(sql) as cur:
        rows = await cur.fetchall()
    return [
        {"model": f"{r['provider']}/{r['model']}", "provider": r["provider"], "type": r["type"],
         "input": r["input"], "output": r["output"], "cached_input": r["cached_input"],
         "per_image": r["per_image"], "per_image_variants": r["per_image_variants"],
         "per_1m_chars": r["per_1m_chars"], "per_second": r["per_second"],
         "per_mb": r["per_mb"], "updated_at": iso(r["updated_at"])}
        for r in rows
    ]  # fmt: skip


async def keys(conn: Reader, user_id: int) -> list[dict[str, Any]]:
    """A user's keys, newest first: prefix and label only (the hash never leaves the store)."""
    sql = (
        "SELECT id, label, prefix, created_at, revoked_at FROM api_keys WHERE user_id = ? "
        "ORDER BY id DESC"
    )
    async with conn.execute(sql, (user_id,)) as cur:
        rows = await cur.fetchall()
    return [
        {"id": r["id"], "label": r["label"], "prefix": r["prefix"],
         "created_at": iso(r["created_at"]), "revoked_at": iso(r["revoked_at"]),
         "active": r["revoked_at"] is None}
        for r in rows
    ]  # fmt: skip


async def key_owner(conn: Reader, key_id: int) -> int | None:
    async with conn.execute("SELECT user_id FROM api_keys WHERE id = ?", (key_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def grants(conn: Reader, user_id: int, limit: int) -> list[dict[str, Any]]:
    """A user's ledger entries that people made (grants, adjustments, refunds), newest first."""
    sql = (
        "SELECT id, kind, amount, note, created_at FROM credit_ledger "
        "WHERE user_id = ? AND kind <> 'debit' ORDER BY id DESC LIMIT ?"
    )
    async with conn.execute(sql, (user_id, limit)) as cur:
        rows = await cur.fetchall()
    return [
        {"id": r["id"], "kind": r["kind"], "amount": r["amount"],
         "amount_credits": format_amount(r["amount"]), "note": r["note"],
         "created_at": iso(r["created_at"])}
        for r in rows
    ]  # fmt: skip
