"""Limits and scopes as the CLI and the admin API take them, checked the same way for both:
a bad value is a BadRequest that names its field (`param`), never a 500 or a silent default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson

from hubproxy import money
from hubproxy.errors import BadRequest, HubError

MAX_LIMIT = 10**12  # requests or tokens per minute, or calls at once: beyond any real one
MAX_BUDGET = 10**12 * money.MICRO  # a trillion credits a period: far below 2**63
MAX_GLOBS = 100
MAX_TTL_MS = 100 * 366 * 86_400_000  # a century
PERIODS = ("day", "month")
_GLOB = re.compile(r"^[A-Za-z0-9._:@*?\[\]!/-]{1,200}$")
_TTL = re.compile(r"^([1-9][0-9]{0,9})([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def limit(value: Any, name: str) -> int | None:
    """A limit: a whole number from 0 (no limit) up, or None (back to the [limits] default)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
        raise BadRequest(
            f"'{name}' must be a whole number from 0 (no limit) to {MAX_LIMIT}, or null "
            f"(the default), got {value!r}.",
            param=name,
        )
    return value


def expires(value: Any, now: int, name: str = "expires") -> int | None:
    """An expiry in the future: an ISO date (midnight UTC) or date and time (UTC unless it
    says otherwise), as Unix ms; None: never."""
    if value is None:
        return None
    when: datetime | None = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            if len(value.strip()) == 10:
                day = date.fromisoformat(value.strip())
                when = datetime(day.year, day.month, day.day, tzinfo=UTC)
            else:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
        except ValueError:
            when = None
    if when is None:
        raise BadRequest(
            f"'{name}' must be a date or a date and time, e.g. 2027-01-01 or "
            f"2027-01-01T12:00:00Z, got {value!r}.",
            param=name,
        )
    ms = int(when.timestamp() * 1000)
    if ms <= now:
        raise BadRequest(f"'{name}' must be in the future, got {value!r}.", param=name)
    return ms


def ttl(value: Any, now: int, name: str = "ttl") -> int:
    """An expiry as a time to live from now: 90s, 45m, 12h, 30d or 2w; as Unix ms."""
    match = _TTL.match(value.strip()) if isinstance(value, str) else None
    ms = int(match[1]) * _UNIT_MS[match[2]] if match else 0
    if not match or ms > MAX_TTL_MS:
        raise BadRequest(
            f"'{name}' must be a number and a unit (s, m, h, d or w), e.g. 30d, of at most a "
            f"century, got {value!r}.",
            param=name,
        )
    return now + ms


def models(value: Any, name: str = "models") -> tuple[str, ...]:
    """A model allow-list: globs over provider/model (`openai/*`, `anthropic/claude-*`), as a
    list or one comma-separated string. Empty or null: any model."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [g.strip() for g in value.split(",") if g.strip()]
    if (
        not isinstance(value, list)
        or len(value) > MAX_GLOBS
        or not all(isinstance(g, str) and _GLOB.match(g) for g in value)
    ):
        raise BadRequest(
            f"'{name}' must be a list of at most {MAX_GLOBS} globs over provider/model, such "
            f"as 'openai/*,anthropic/claude-*', got {value!r}.",
            param=name,
        )
    return tuple(dict.fromkeys(value))


def models_column(globs: tuple[str, ...]) -> str | None:
    """An allow-list as api_keys.models stores it: a JSON list, or NULL for any model."""
    return orjson.dumps(list(globs)).decode() if globs else None


def budget(value: Any, name: str = "budget") -> tuple[int, str] | None:
    """A spend cap: credits per UTC day or month, "5/day" or "20/month", as micro-credits and
    the period; None: no cap."""
    if value is None:
        return None
    amount, sep, period = value.partition("/") if isinstance(value, str) else ("", "", "")
    problem = f"'{name}' must be credits per day or month, e.g. 5/day or 20/month"
    if not sep or period.strip() not in PERIODS:
        raise BadRequest(f"{problem}, got {value!r}.", param=name)
    try:
        micro = money.parse_amount(amount.strip(), f"'{name}'")
    except HubError as exc:
        exc.param = name
        raise
    if micro > MAX_BUDGET:
        raise BadRequest(f"{problem}, of at most {MAX_BUDGET // money.MICRO}.", param=name)
    return micro, period.strip()


def show_budget(amount: int | None, period: str | None) -> str | None:
    return None if amount is None else f"{money.format_amount(amount)}/{period or 'day'}"


def key_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A key's scope and limits as the admin API shows them (limits of null follow the
    [limits] defaults)."""
    return {
        "id": row["id"],
        "user": row["user"],
        "label": row["label"],
        "prefix": row["prefix"],
        "active": row["revoked_at"] is None,
        "expires_at": iso(row["expires_at"]),
        "models": orjson.loads(row["models"]) if row["models"] else None,
        "budget": show_budget(row["budget"], row["budget_period"]),
        "limits": limits_view(row),
    }


def limits_view(row: Mapping[str, Any]) -> dict[str, int | None]:
    return {name: row[name] for name in ("rpm", "tpm", "concurrency")}


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def scope_update(body: Mapping[str, Any], now: int) -> dict[str, Any]:
    """The api_keys columns to set from the scope fields given ("expires_at" or "ttl",
    "models", "budget"); a field given as null clears it."""
    if "expires_at" in body and "ttl" in body:
        raise BadRequest("Give 'expires_at' or 'ttl', not both.", param="ttl")
    cols: dict[str, Any] = {}
    if "expires_at" in body:
        cols["expires_at"] = expires(body["expires_at"], now, "expires_at")
    if "ttl" in body:
        cols["expires_at"] = None if body["ttl"] is None else ttl(body["ttl"], now)
    if "models" in body:
        cols["models"] = models_column(models(body["models"]))
    if "budget" in body:
        cap = budget(body["budget"])
        cols["budget"], cols["budget_period"] = (None, None) if cap is None else cap
    return cols
