"""Usage rollups: hourly and daily sums per user, key and model, with latency histograms.

The writer adds each finished call to its hour and its day in the same transaction as the
call's row, so charts never scan model_calls. Latencies go into log-scale histograms (four
buckets per doubling, so a percentile read back is within ~19% of the true value).
"""

from __future__ import annotations

import math
from typing import Any

import aiosqlite
import orjson

from hubproxy.store.writer import Op

BUCKETS = 64
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

_UPSERT = (
    "INSERT INTO usage_rollups (period, bucket, user_id, api_key_id, provider, model, requests, "
    "errors, prompt_tokens, completion_tokens, credits, duration_hist, ttfb_hist) "
    "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (period, bucket, user_id, api_key_id, provider, model) DO UPDATE SET "
    "requests = requests + 1, errors = errors + excluded.errors, "
    "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = completion_tokens + excluded.completion_tokens, "
    "credits = credits + excluded.credits, "
    "duration_hist = json_set(duration_hist, '$[' || ? || ']', "
    "json_extract(duration_hist, '$[' || ? || ']') + 1), "
    "ttfb_hist = CASE WHEN ? < 0 THEN ttfb_hist ELSE json_set(ttfb_hist, '$[' || ? || ']', "
    "json_extract(ttfb_hist, '$[' || ? || ']') + 1) END"
)
_EMPTY = [0] * BUCKETS


def bucket_of(ms: float) -> int:
    """The histogram bucket of a latency: 0 for under 1 ms, then four per doubling."""
    if ms < 1:
        return 0
    return min(BUCKETS - 1, int(math.log2(ms) * 4) + 1)


def bucket_upper(index: int) -> float:
    """The largest latency (ms) a bucket holds."""
    return 1.0 if index == 0 else 2 ** (index / 4)


def percentile(hist: list[int], q: float) -> float | None:
    total = sum(hist)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return round(bucket_upper(index), 1)
    return round(bucket_upper(BUCKETS - 1), 1)


def _hist(index: int | None) -> str:
    hist = list(_EMPTY)
    if index is not None:
        hist[index] = 1
    return orjson.dumps(hist).decode()


def rollup(
    *,
    created_at: int,
    user_id: int,
    api_key_id: int,
    provider: str,
    model: str,
    failed: bool,
    prompt_tokens: int,
    completion_tokens: int,
    credits: int,
    duration_ms: int,
    ttfb_ms: int | None,
) -> list[Op]:
    """The writes that add one finished call to its hour and its day."""
    d = bucket_of(duration_ms)
    t = -1 if ttfb_ms is None else bucket_of(ttfb_ms)
    ops: list[Op] = []
    for period, size in (("hour", HOUR_MS), ("day", DAY_MS)):
        ops.append(
            (
                _UPSERT,
                (
                    period, created_at - created_at % size, user_id, api_key_id, provider,
                    model, int(failed), prompt_tokens, completion_tokens, credits,
                    _hist(d), _hist(None if t < 0 else t), d, d, t, t, t,
                ),
            )
        )  # fmt: skip
    return ops


GROUPS = {"hour": "bucket", "day": "bucket", "model": "provider || '/' || model"}


async def report(
    conn: aiosqlite.Connection,
    *,
    group_by: str,
    start_ms: int,
    end_ms: int,
    user_id: int | None,
) -> list[dict[str, Any]]:
    """Usage between two times, grouped by hour, day or model (over daily rows), summed over
    keys; `user_id` None for everyone."""
    period = "hour" if group_by == "hour" else "day"
    key = GROUPS[group_by]
    where = "period = ? AND bucket >= ? AND bucket < ?"
    params: list[Any] = [
        period,
        start_ms - start_ms % (HOUR_MS if period == "hour" else DAY_MS),
        end_ms,
    ]
    if user_id is not None:
        where += " AND user_id = ?"
        params.append(user_id)
    sql = (
        f"SELECT {key} AS grp, requests, errors, prompt_tokens, completion_tokens, credits, "
        f"duration_hist, ttfb_hist FROM usage_rollups WHERE {where} ORDER BY grp"
    )
    groups: dict[Any, dict[str, Any]] = {}
    async with conn.execute(sql, params) as cur:
        async for row in cur:
            g = groups.setdefault(
                row[0],
                {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
                 "credits": 0, "duration": list(_EMPTY), "ttfb": list(_EMPTY)},
            )  # fmt: skip
            for i, name in enumerate(
                ("requests", "errors", "prompt_tokens", "completion_tokens", "credits"), 1
            ):
                g[name] += row[i]
            for name, raw in (("duration", row[6]), ("ttfb", row[7])):
                g[name] = [a + b for a, b in zip(g[name], orjson.loads(raw), strict=True)]
    out = []
    for grp, g in groups.items():
        duration, ttfb = g.pop("duration"), g.pop("ttfb")
        label = "model" if group_by == "model" else "start"
        out.append(
            {
                label: grp,
                **g,
                "p50_duration_ms": percentile(duration, 0.5),
                "p95_duration_ms": percentile(duration, 0.95),
                "p50_ttfb_ms": percentile(ttfb, 0.5),
                "p95_ttfb_ms": percentile(ttfb, 0.95),
            }
        )
    return out
