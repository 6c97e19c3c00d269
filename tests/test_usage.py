"""Usage rollups: the writer keeps hourly and daily sums with each call; percentiles read back."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from hubproxy.api.state import READER, WRITER
from hubproxy.store import usage
from hubproxy.store.clock import now_ms
from tests.conftest import Hub

BACKENDS = ("sqlite", "postgres")  # the hub tests here run on both (tests/conftest.py)

MESSAGES = [{"role": "user", "content": "hi"}]


def test_histogram_buckets_and_percentiles() -> None:
    assert usage.bucket_of(0.5) == 0 and usage.bucket_of(1) == 1
    assert usage.bucket_of(10**9) == usage.BUCKETS - 1
    for ms in (1, 3, 10, 250, 4000):
        assert ms <= usage.bucket_upper(usage.bucket_of(ms)) < ms * 1.19 + 1
    hist = [0] * usage.BUCKETS
    for ms in [10] * 90 + [1000] * 10:
        hist[usage.bucket_of(ms)] += 1
    assert usage.percentile(hist, 0.5) == pytest.approx(10, rel=0.2)
    assert usage.percentile(hist, 0.95) == pytest.approx(1000, rel=0.2)
    assert usage.percentile([0] * usage.BUCKETS, 0.5) is None


async def test_calls_roll_up_by_hour_day_and_model(hub: Hub) -> None:
    client = hub.openai()
    for _ in range(4):
        await client.chat.completions.create(model="up/ok", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="up/e500", messages=MESSAGES)
    # Rollups ride along with the writer's batches within its linger period (5 ms).
    await hub.eventually(lambda: len(hub.rows("SELECT * FROM usage_rollups")) == 4)
    rows = hub.rows("SELECT * FROM usage_rollups WHERE model = 'ok' ORDER BY period")
    assert [r["period"] for r in rows] == ["day", "hour"]
    for r in rows:
        assert (r["requests"], r["errors"]) == (4, 0)
        assert (r["prompt_tokens"], r["completion_tokens"]) == (44, 16)
    [failed] = hub.rows("SELECT * FROM usage_rollups WHERE model = 'e500' AND period = 'day'")
    assert (failed["requests"], failed["errors"]) == (1, 1)

    reader = hub.app[READER]
    by_model = await usage.report(
        reader, group_by="model", start_ms=now_ms() - 3_600_000, end_ms=now_ms() + 1,
        user_id=1,
    )  # fmt: skip
    ok = next(g for g in by_model if g["model"] == "up/ok")
    assert ok["requests"] == 4 and ok["p50_duration_ms"] is not None
    assert ok["p95_ttfb_ms"] is not None
    other_user = await usage.report(
        reader, group_by="day", start_ms=0, end_ms=now_ms() + 1, user_id=999
    )
    assert other_user == []


async def test_polling_usage_costs_at_most_one_flush_a_second(hub: Hub) -> None:
    writer = hub.app[WRITER]
    flushes = 0
    flush = writer.flush

    async def counted() -> None:
        nonlocal flushes
        flushes += 1
        await flush()

    writer.flush = counted  # type: ignore[method-assign]
    headers = {"Authorization": f"Bearer {hub.key}"}

    async def requests(session: aiohttp.ClientSession) -> int:
        async with session.get(hub.url + "/api/user/usage", headers=headers) as r:
            assert r.status == 200
            return int((await r.json())["totals"]["requests"])

    async with hub.openai() as client, aiohttp.ClientSession() as s:
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
        seen = await asyncio.gather(*(requests(s) for _ in range(20)))  # at once: one flush
        assert seen == [1] * 20, "the call of a moment ago counts"
        for _ in range(10):  # polled within the second: served from that flush
            assert await requests(s) == 1
        assert flushes == 1
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
        await asyncio.sleep(1.05)  # the last flush is now over a second old
        assert await requests(s) == 2
        assert flushes == 2
