"""Rate limits across instances (issue #12 part 4): instances on one PostgreSQL database learn
how many of them are live from the heartbeats, and each admits its share, ceil(limit / N), so
that together they admit at most limit + N - 1 (docs/scaling.md)."""

from __future__ import annotations

import asyncio

from hubproxy.api.state import LIMITS
from tests.conftest import Hub, HubFactory
from tests.limits.test_rate_limits import client, post

BACKENDS = ("postgres",)  # several instances share one database only there


async def hubs_on_one_database(hub_factory: HubFactory, n: int) -> list[Hub]:
    return [
        await hub_factory(
            limits={"key_rpm": 10},
            server={"instance": f"node-{i}", "heartbeat_s": 0.1, "dead_after_s": 5},
            database={"path": f"hub{i}.db"},  # a journal of its own
        )
        for i in range(n)
    ]


async def test_three_instances_each_admit_their_share_of_a_keys_rpm(
    hub_factory: HubFactory,
) -> None:
    hubs = await hubs_on_one_database(hub_factory, 3)
    for _ in range(100):  # bounded: each learns the count at its next heartbeat
        if all(h.app[LIMITS].instances == 3 for h in hubs):
            break
        await asyncio.sleep(0.05)
    assert [h.app[LIMITS].instances for h in hubs] == [3, 3, 3]
    key = hubs[0].key  # one key, used on every instance
    body = {"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]}
    admitted = []
    async with client() as s:
        for hub in hubs:
            results = [await post(s, hub, body, key) for _ in range(10)]
            admitted.append(sum(status == 200 for status, _, _ in results))
            assert {status for status, _, _ in results} == {200, 429}
    assert admitted == [4, 4, 4], "ceil(10 / 3) each: at most 10 + 3 - 1 together"
