"""Rebuilding the usage rollups a crash lost: recounted from the calls past the watermark.

The writer drains rollups every few milliseconds, after the rows of the calls they count, and
moves the watermark with each drain. A kill -9 between a call's commit and the next drain
loses that call's share of its rollups, never its row or its debit. So at start, before
serving, every hour holding a call that finished past the watermark is recounted from its
calls, each day holding such an hour is summed again from its hours, and the watermark moves
to now, all in one transaction. Recounting whole hours makes this exact whatever the drains
had counted of them; the slack covers a wall clock stepped back and the millisecond a drain
shares with calls finishing. One server writes calls to a database (the CLI never does), so
nothing is finishing while this runs.

Counted: every finished call (success or failed, a call the start-up sweep closed included)
but one the stale sweep marked: that mark is provisional, and the call's real outcome,
if it comes, is counted when it is recorded.
"""

from __future__ import annotations

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.reader import Reader
from hubproxy.store.usage import DAY_MS, HOUR_MS, WATERMARK, Rollups

SLACK_MS = 60_000
ID_SKEW_MS = 1_000  # a call's id is stamped just before its created_at
_COUNTED = "status <> 'processing' AND (error IS NULL OR error NOT LIKE 'stale: %')"
_CALLS = (
    "SELECT created_at, user_id, api_key_id, provider, model, status, prompt_tokens, "
    "completion_tokens, credits, duration_ms, ttfb_ms FROM model_calls "
    # ids start with their creation time in 12 hex digits: the primary key finds the hour
    f"WHERE id >= ? AND id < ? AND created_at >= ? AND created_at < ? AND {_COUNTED}"
)
_HOURS_OF_DAY = (
    "SELECT bucket, user_id, api_key_id, provider, model, requests, errors, prompt_tokens, "
    "completion_tokens, credits, duration_hist, ttfb_hist FROM usage_rollups "
    "WHERE period = 'hour' AND bucket >= ? AND bucket < ?"
)
_DELETE = "DELETE FROM usage_rollups WHERE period = ? AND bucket = ?"


async def ops(reader: Reader, dialect: str = "sqlite") -> list[Op]:
    """The writes that make the rollups whole again (and move the watermark to now), in
    `dialect`'s spelling. Reads through `reader`: call it at start, before the first request."""
    now = now_ms()
    async with reader.execute(
        "SELECT finished_at FROM usage_watermark WHERE name = 'rollups'"
    ) as cur:
        found = await cur.fetchone()
    since = (int(found[0]) if found else 0) - SLACK_MS
    async with reader.execute(
        f"SELECT DISTINCT created_at - created_at % {HOUR_MS} FROM model_calls "
        f"WHERE finished_at >= ? AND {_COUNTED}",
        (since,),
    ) as cur:
        hours = sorted(int(r[0]) for r in await cur.fetchall())
    days = sorted({hour - hour % DAY_MS for hour in hours})
    sums = Rollups(dialect)
    for hour in hours:
        start, end = hour, hour + HOUR_MS
        params = (f"{start - ID_SKEW_MS:012x}", f"{end:012x}", start, end)
        async with reader.execute(_CALLS, params) as cur:
            for c in await cur.fetchall():
                sums.add(
                    created_at=c["created_at"], user_id=c["user_id"] or 0,
                    api_key_id=c["api_key_id"] or 0, provider=c["provider"], model=c["model"],
                    failed=c["status"] == "failed", prompt_tokens=c["prompt_tokens"],
                    completion_tokens=c["completion_tokens"], credits=c["credits"],
                    duration_ms=c["duration_ms"] or 0, ttfb_ms=c["ttfb_ms"],
                )  # fmt: skip
    recounted = set(hours)
    for day in days:
        async with reader.execute(_HOURS_OF_DAY, (day, day + DAY_MS)) as cur:
            for h in await cur.fetchall():
                if h["bucket"] not in recounted:  # an hour left as it is adds to its day
                    key = ("day", day, h["user_id"], h["api_key_id"], h["provider"], h["model"])
                    sums.merge(key, tuple(h)[5:])
    return [
        *((_DELETE, ("hour", hour)) for hour in hours),
        *((_DELETE, ("day", day)) for day in days),
        *sums.ops(),
        (WATERMARK, (now,)),
    ]
