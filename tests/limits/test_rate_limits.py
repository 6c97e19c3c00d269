"""Rate limits through the real app: requests and tokens per minute and concurrent requests,
per key and per user, with OpenAI's x-ratelimit-* headers on refusals and on answers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from hubproxy.api.state import LIMITS
from hubproxy.config import LimitsSettings
from hubproxy.errors import RateLimited
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.routing import Route
from hubproxy.limits.rates import RateLimits, duration
from hubproxy.limits.window import Window
from tests.conftest import Hub, HubFactory, add_key
from tests.fakes.openai_upstream import USAGE, FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def providers(base_url: str) -> list[dict[str, Any]]:
    return [
        {"name": "demo", "type": "fake", "models": ["echo"]},
        {"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-000000"},
    ]


async def post(
    session: aiohttp.ClientSession, hub: Hub, body: dict[str, Any], key: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(
        hub.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key or hub.key}"},
    ) as r:
        return r.status, dict(r.headers), await r.read()


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30), connector=aiohttp.TCPConnector(limit=0)
    )


def active(hub: Hub) -> list[int]:
    """Calls in flight, by every meter the limits keep."""
    return [m.active for m in hub.app[LIMITS]._meters.values()]


# --- requests per minute --------------------------------------------------------------------


async def test_rpm_is_exact_under_200_concurrent_requests(hub_factory: HubFactory) -> None:
    hub = await hub_factory(limits={"key_rpm": 50})
    body = {"model": "demo/echo", "messages": MESSAGES}
    async with client() as s:
        results = await asyncio.gather(*(post(s, hub, body) for _ in range(200)))
    ok = [h for status, h, _ in results if status == 200]
    refused = [(h, b) for status, h, b in results if status == 429]
    assert len(ok) == 50 and len(refused) == 150, "no more admitted than the limit"
    assert all(h["x-ratelimit-limit-requests"] == "50" for h in ok)
    # Each admitted call saw the room left after it: 49, 48, ... 0, each exactly once.
    assert sorted(int(h["x-ratelimit-remaining-requests"]) for h in ok) == list(range(50))
    for h, b in refused:
        assert b'"code":"rate_limit_exceeded"' in b and b"50 requests per minute" in b
        assert h["x-ratelimit-limit-requests"] == "50"
        assert h["x-ratelimit-remaining-requests"] == "0"
        assert 0 < int(h["Retry-After"]) <= 60
        assert h["x-ratelimit-reset-requests"].endswith("s")
    assert len(hub.calls()) == 50, "a refused call is not a call: nothing recorded"
    assert active(hub) == [0]


async def test_user_limit_counts_every_key_of_the_user(hub_factory: HubFactory) -> None:
    hub = await hub_factory(limits={"user_rpm": 3, "key_rpm": 10})
    other = add_key(hub.settings, "alice")  # a second key of the same user
    body = {"model": "demo/echo", "messages": MESSAGES}
    async with client() as s:
        statuses = [(await post(s, hub, body, key))[0] for key in (hub.key, other) * 3]
        bob = add_key(hub.settings, "bob")
        other_user = await post(s, hub, body, bob)
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert other_user[0] == 200, "another user's calls do not count against alice"
    # The tighter limit (the user's: 3, none left) is what the headers tell.
    assert other_user[1]["x-ratelimit-limit-requests"] == "3"
    assert other_user[1]["x-ratelimit-remaining-requests"] == "2"


async def test_no_limit_means_no_headers_and_no_metering(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    async with client() as s:
        status, headers, _ = await post(s, hub, {"model": "demo/echo", "messages": MESSAGES})
    assert status == 200
    assert not [h for h in headers if h.lower().startswith("x-ratelimit")]
    assert hub.app[LIMITS]._meters == {}


# --- tokens per minute ----------------------------------------------------------------------


async def test_tpm_holds_the_estimate_and_settles_at_the_count(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await hub_factory(providers(upstream[1]), limits={"key_tpm": 1000})
    # "hi": an 8-token prompt estimate, plus max_tokens 500: each call is held at 508 tokens,
    # and the fake upstream reports 15 (USAGE).
    body = {"model": "up/ok", "messages": MESSAGES, "max_tokens": 500}
    async with client() as s:
        status, headers, _ = await post(s, hub, body)
        assert status == 200
        # Settled before the answer left: the count, not the estimate.
        assert headers["x-ratelimit-limit-tokens"] == "1000"
        assert headers["x-ratelimit-remaining-tokens"] == str(1000 - USAGE["total_tokens"])
        # Held at 508 it would leave 492, too little for a second 508: corrected, it fits.
        status, headers, _ = await post(s, hub, body)
        assert status == 200
        assert headers["x-ratelimit-remaining-tokens"] == str(1000 - 2 * USAGE["total_tokens"])
        # A stream shows the hold in its headers (they leave before the count is known).
        stream = {**body, "stream": True}
        status, headers, _ = await post(s, hub, stream)
        assert status == 200
        assert headers["x-ratelimit-remaining-tokens"] == str(1000 - 2 * 15 - 508)
        status, headers, _ = await post(s, hub, body)
        assert headers["x-ratelimit-remaining-tokens"] == str(1000 - 4 * 15)
        # One call may never need more than the limit.
        status, headers, raw = await post(s, hub, {**body, "max_tokens": 2000})
    assert status == 429 and b"send a smaller max_tokens" in raw
    assert "Retry-After" in headers


async def test_tpm_refuses_while_estimates_are_held(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await hub_factory(providers(base_url), limits={"key_tpm": 1100})
    body = {"model": "up/gated", "messages": MESSAGES, "max_tokens": 500, "stream": True}
    async with client() as s:
        first = [asyncio.ensure_future(post(s, hub, body)) for _ in range(2)]
        await hub.eventually(lambda: len(fake.requests) == 2)
        status, headers, raw = await post(s, hub, body)  # 2 x 508 held: 84 left
        assert status == 429 and b"1100 tokens per minute" in raw
        assert headers["x-ratelimit-remaining-tokens"] == str(1100 - 2 * 508)
        fake.release.set()
        assert [r[0] for r in await asyncio.gather(*first)] == [200, 200]
        status, headers, _ = await post(s, hub, {**body, "stream": False})
    assert status == 200, "settled at 15 each, the window has room again"


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrency_is_exact_and_released_on_every_exit(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await hub_factory(providers(base_url), limits={"key_concurrency": 5})
    gated = {"model": "up/gated", "messages": MESSAGES, "stream": True}
    async with client() as s:
        calls = [asyncio.ensure_future(post(s, hub, gated)) for _ in range(20)]
        await hub.eventually(lambda: sum(c.done() for c in calls) == 15)
        await hub.eventually(lambda: len(fake.requests) == 5)
        refused = [c.result() for c in calls if c.done()]
        assert {status for status, _, _ in refused} == {429}
        assert all(b"at most 5" in raw for _, _, raw in refused)
        assert len(fake.requests) == 5 and active(hub) == [5]
        fake.release.set()
        await asyncio.gather(*calls)
        assert [c.result()[0] for c in calls].count(200) == 5
        assert active(hub) == [0], "success releases"

        status, _, _ = await post(s, hub, {"model": "up/e500", "messages": MESSAGES})
        assert status == 502 and active(hub) == [0], "an upstream error releases"
        status, _, _ = await post(s, hub, {"model": "nope/x", "messages": MESSAGES})
        assert status == 404 and active(hub) == [0]

        # A client that leaves mid-stream releases too.
        fake.release.clear()
        fake.first_sent.clear()
        async with s.post(
            hub.url + "/v1/chat/completions", json=gated,
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r:  # fmt: skip
            assert r.status == 200
            await r.content.readany()
            await asyncio.wait_for(fake.first_sent.wait(), 5)
            assert active(hub) == [1]
            r.close()
        await hub.eventually(lambda: active(hub) == [0])
        await hub.eventually(lambda: [c["status"] for c in hub.calls()].count("failed") == 2)
        fake.release.set()
        # Five at once again: nothing leaked.
        many = await asyncio.gather(
            *(post(s, hub, {"model": "up/ok", "messages": MESSAGES}) for _ in range(5))
        )
    assert [status for status, _, _ in many] == [200] * 5


async def test_a_later_refusal_releases_the_limits(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """A call the limits admitted but billing (or a key scope) refused never started: its
    place and its count are given back."""
    hub = await hub_factory(
        providers(upstream[1]),
        limits={"key_concurrency": 1, "key_rpm": 2},
        billing={"mode": "credits", "rates": []},
    )
    async with client() as s:
        for _ in range(3):
            status, _, raw = await post(s, hub, {"model": "up/ok", "messages": MESSAGES})
            assert status == 403 and b"model_not_priced" in raw
    assert active(hub) == [0]


# --- the window -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.25

    def __call__(self) -> float:
        return self.now


def test_window_slides_by_the_second() -> None:
    w = Window()
    w.add(100, 3)
    w.add(130, 2)
    w.advance(159)
    assert w.total == 5
    assert w.room_in(159.5, limit=5, need=1) == pytest.approx(0.5)  # 100's 3 leave at 160
    assert w.reset_in(159.5) == pytest.approx(30.5)  # 130's leave at 190
    w.advance(160)
    assert w.total == 2
    w.correct(130, -1)
    assert w.total == 1
    w.correct(100, 5)  # gone from the window: nothing to correct
    assert w.total == 1
    w.advance(10_000)
    assert w.total == 0 and w.reset_in(10_000) == 0


def test_limits_come_back_after_a_minute_and_say_when() -> None:
    clock = Clock()
    limits = RateLimits(LimitsSettings(key_rpm=2), clock=clock)
    ctx = CallContext("r", Principal(1, "alice", "member", 7), {})
    route = Route("demo", "echo")
    limits.admit(ctx, route, "chat", 10)
    clock.now += 30
    limits.admit(ctx, route, "chat", 10)
    with pytest.raises(RateLimited) as info:
        limits.admit(ctx, route, "chat", 10)
    assert info.value.headers["Retry-After"] == "30"  # the first leaves 30 s from now
    assert info.value.headers["x-ratelimit-reset-requests"] == "59.75s"  # when all have left
    clock.now += 30  # the first has left the window
    assert (
        limits.headers(limits.admit(ctx, route, "chat", 10))["x-ratelimit-remaining-requests"]
        == "0"
    )


def test_durations_read_like_openais() -> None:
    assert duration(0.012) == "12ms"
    assert duration(1.5) == "1.5s"
    assert duration(59) == "59s"
    assert duration(60) == "1m0s"
    assert duration(0) == "0ms"


# --- several instances ----------------------------------------------------------------------


def test_instances_sharing_a_limit_admit_at_most_limit_plus_instances_minus_one() -> None:
    """Three instances (three RateLimits, as three processes keep them), each told there are
    three: a key's 10 requests a minute are split 4 + 4 + 4 (≤ 10 + 3 − 1), whatever the
    balancer does; one instance alone still admits 10."""
    clock = Clock()
    ctx = CallContext("r", Principal(1, "alice", "member", 7), {})
    route = Route("demo", "echo")
    nodes = [RateLimits(LimitsSettings(key_rpm=10), clock=clock) for _ in range(3)]
    for node in nodes:
        node.spread(3)
    admitted = 0
    for i in range(60):
        try:
            nodes[i % 3].admit(ctx, route, "chat", 10)
            admitted += 1
        except RateLimited:
            pass
    assert admitted == 12 <= 10 + 3 - 1
    alone = RateLimits(LimitsSettings(key_rpm=10), clock=clock)
    alone.spread(1)
    assert sum(_admits(alone, ctx, route, 10) for _ in range(20)) == 10


def test_a_call_larger_than_an_instances_share_is_admitted_when_it_is_alone() -> None:
    clock = Clock()
    ctx = CallContext("r", Principal(1, "alice", "member", 7), {})
    route = Route("demo", "echo")
    node = RateLimits(LimitsSettings(key_tpm=900), clock=clock)
    node.spread(3)  # a share of 300 tokens a minute
    assert _admits(node, ctx, route, 600)  # more than the share, alone in the window
    assert not _admits(node, ctx, route, 10)  # the share is used up
    clock.now += 60
    assert not _admits(node, ctx, route, 901)  # more than the whole limit: never
    assert _admits(node, ctx, route, 300)
    assert not _admits(node, ctx, route, 600)  # not alone now


def test_concurrency_is_shared_rounded_up() -> None:
    clock = Clock()
    ctx = CallContext("r", Principal(1, "alice", "member", 7), {})
    route = Route("demo", "echo")
    node = RateLimits(LimitsSettings(user_concurrency=4), clock=clock)
    node.spread(3)  # ceil(4 / 3) = 2 here, 6 ≤ 4 + 3 − 1 in all
    assert [_admits(node, ctx, route, 1) for _ in range(3)] == [True, True, False]


def _admits(node: RateLimits, ctx: CallContext, route: Route, estimate: int) -> bool:
    try:
        node.admit(ctx, route, "chat", estimate)
    except RateLimited:
        return False
    return True
