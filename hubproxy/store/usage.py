"""Usage rollups: hourly and daily sums per user, key and model, with latency histograms.

Each finished call is added to its hour and its day in memory (Rollups), and the writer
drains the sums into a batch at most every few milliseconds: charts never scan model_calls.
A drain also moves the watermark (usage_watermark), in its transaction: calls finished before
it are counted. A crash loses what was not drained yet; at start, rebuild.py recounts the
hours of the calls that finished past the watermark. Latencies go into log-scale histograms
(four buckets per doubling, so a percentile read back is within ~19% of the true value).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import orjson

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader

BUCKETS = 64
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

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


Key = tuple[str, int, int, int, str, str]  # period, bucket, user, key, provider, model


WATERMARK = "UPDATE usage_watermark SET finished_at = ? WHERE name = 'rollups'"


class Rollups:
    """Finished calls' usage, merged in memory until the writer's next batch drains it into
    one upsert per (period, user, key, model), at a fraction of a statement per call. Each
    drain moves the watermark too, in the same transaction. `dialect` ("sqlite" or
    "postgres") picks how the upserts spell the merge of the histograms."""

    def __init__(self, dialect: str = "sqlite") -> None:
        self._pending: dict[Key, list[Any]] = {}
        self._upsert = _upsert_postgres if dialect == "postgres" else _upsert

    def add(
        self,
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
    ) -> None:
        d = bucket_of(duration_ms)
        t = None if ttfb_ms is None else bucket_of(ttfb_ms)
        for period, size in (("hour", HOUR_MS), ("day", DAY_MS)):
            key = (period, created_at - created_at % size, user_id, api_key_id, provider, model)
            acc = self._pending.get(key)
            if acc is None:
                acc = self._pending[key] = [0, 0, 0, 0, 0, {}, {}]
            acc[0] += 1
            acc[1] += failed
            acc[2] += prompt_tokens
            acc[3] += completion_tokens
            acc[4] += credits
            acc[5][d] = acc[5].get(d, 0) + 1
            if t is not None:
                acc[6][t] = acc[6].get(t, 0) + 1

    def drain(self) -> list[Op]:
        """The upserts of what was gathered, and the watermark: every call finished before
        now was added before now (a call is added as it finishes), so is in these sums or in
        earlier ones."""
        pending, self._pending = self._pending, {}
        if not pending:
            return []
        upserts = [self._upsert(key, acc) for key, acc in pending.items()]
        return [*upserts, (WATERMARK, (now_ms(),))]

    def ops(self) -> list[Op]:
        """The inserts of what was gathered, for periods rebuilt from scratch (no watermark)."""
        pending, self._pending = self._pending, {}
        return [self._upsert(key, acc) for key, acc in pending.items()]

    def merge(self, key: Key, row: Any) -> None:
        """Add a stored rollup row (requests ... credits, then the two histograms as JSON
        arrays) to `key`: how a day is summed from its hours."""
        acc = self._pending.get(key)
        if acc is None:
            acc = self._pending[key] = [0, 0, 0, 0, 0, {}, {}]
        for i in range(5):
            acc[i] += row[i]
        for slot, raw in ((5, row[5]), (6, row[6])):
            hist: dict[int, int] = acc[slot]
            for index, count in enumerate(orjson.loads(raw)):
                if count:
                    hist[index] = hist.get(index, 0) + count


def _upsert(key: Key, acc: list[Any]) -> Op:
    durations: dict[int, int] = acc[5]
    ttfbs: dict[int, int] = acc[6]
    params: list[Any] = [*key, *acc[:5], _array(durations), _array(ttfbs)]
    for hist in (durations, ttfbs):
        for index, count in hist.items():
            path = f"$[{index}]"
            params += (path, path, count)
    return _upsert_sql(len(durations), len(ttfbs)), params


@functools.lru_cache(maxsize=256)
def _upsert_sql(durations: int, ttfbs: int) -> str:
    """The upsert for a delta touching this many histogram buckets (the SQL text depends on
    nothing else, so SQLite's statement cache serves it)."""

    def bump(column: str, n: int) -> str:
        if not n:
            return column
        pairs = ", ".join([f"?, json_extract({column}, ?) + ?"] * n)
        return f"json_set({column}, {pairs})"

    return (
        "INSERT INTO usage_rollups (period, bucket, user_id, api_key_id, provider, model, "
        "requests, errors, prompt_tokens, completion_tokens, credits, duration_hist, "
        "ttfb_hist) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (period, bucket, user_id, api_key_id, provider, model) DO UPDATE SET "
        "requests = requests + excluded.requests, errors = errors + excluded.errors, "
        "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = completion_tokens + excluded.completion_tokens, "
        "credits = credits + excluded.credits, "
        f"duration_hist = {bump('duration_hist', durations)}, "
        f"ttfb_hist = {bump('ttfb_hist', ttfbs)}"
    )


def _upsert_postgres(key: Key, acc: list[Any]) -> Op:
    """PostgreSQL's upsert: the delta's whole histograms, added element by element to the
    stored ones (jsonb), so that every instance merges into the same rows."""
    return _UPSERT_POSTGRES, [*key, *acc[:5], _array(acc[5]), _array(acc[6])]


def _merged(column: str) -> str:
    return (
        f"(SELECT jsonb_agg(a.n::bigint + b.n::bigint ORDER BY a.i)::text "
        f"FROM jsonb_array_elements_text(usage_rollups.{column}::jsonb) WITH ORDINALITY "
        f"AS a(n, i) JOIN jsonb_array_elements_text(excluded.{column}::jsonb) WITH ORDINALITY "
        "AS b(n, i) ON a.i = b.i)"
    )


_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "credits")
_UPSERT_POSTGRES = (
    "INSERT INTO usage_rollups (period, bucket, user_id, api_key_id, provider, model, "
    "requests, errors, prompt_tokens, completion_tokens, credits, duration_hist, "
    "ttfb_hist) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (period, bucket, user_id, api_key_id, provider, model) DO UPDATE SET "
    + "".join(f"{c} = usage_rollups.{c} + excluded.{c}, " for c in _SUMS)
    + f"duration_hist = {_merged('duration_hist')}, ttfb_hist = {_merged('ttfb_hist')}"
)


def _array(hist: dict[int, int]) -> str:
    counts = [0] * BUCKETS
    for index, count in hist.items():
        counts[index] = count
    return orjson.dumps(counts).decode()


GROUPS = {
    "hour": "bucket",
    "day": "bucket",
    "model": "provider || '/' || model",
    "key": "api_key_id",
    "user": "user_id",
}
# What names a group's row; hour and day rows have their "start".
LABELS = {"model": "model", "key": "key_id", "user": "user_id"}


async def report(
    conn: Reader,
    *,
    group_by: str,
    start_ms: int,
    end_ms: int,
    user_id: int | None,
) -> list[dict[str, Any]]:
    """Usage between two times, grouped by hour, day, model, key or user (over daily rows), summed
    over the rest; `user_id` None for everyone."""
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
        label = LABELS.get(group_by, "start")
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
