"""/health/live and /health/ready: 503 with the reasons when the writer is dead, the database
refuses writes, the process drains, or an enabled provider has no usable credential."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubproxy.api.state import DRAIN, WRITER
from hubproxy.app import start
from tests.conftest import Hub, HubFactory, make_settings


async def ready(hub: Hub) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(hub.url + "/health/ready") as r:
        return r.status, await r.json()


async def test_ready_and_live(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    assert await ready(hub) == (200, {"status": "ok", "reasons": []})
    async with aiohttp.ClientSession() as s, s.get(hub.url + "/health/live") as r:
        assert r.status == 200


async def test_not_ready_when_the_writer_task_is_gone(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    writer = hub.app[WRITER]
    assert writer._task is not None
    writer._task.cancel()  # the writer's task dies
    await hub.eventually(lambda: writer._task is not None and writer._task.done())
    status, body = await ready(hub)
    assert status == 503
    assert any(r.startswith("writer") for r in body["reasons"]), body
    writer.start()  # a new task, for the teardown to close


async def test_not_ready_when_the_database_refuses_writes(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    assert (await ready(hub))[0] == 200
    writer = hub.app[WRITER]
    writer._conn.execute("PRAGMA query_only = ON")  # as a read-only disk would
    from hubproxy.api import health

    hub.app[health.PROBE]._at = -10.0  # the last good probe no longer answers
    status, body = await ready(hub)
    assert status == 503
    assert any(r.startswith("database: does not accept writes") for r in body["reasons"]), body
    writer._conn.execute("PRAGMA query_only = OFF")


async def test_not_ready_while_draining(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    hub.app[DRAIN].begin()
    status, body = await ready(hub)
    assert status == 503 and body["reasons"] == ["draining: the server is shutting down"]


async def test_not_ready_without_a_usable_credential(hub_factory: HubFactory) -> None:
    hub = await hub_factory(
        [{"name": "up", "type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-a"}]
    )
    from hubproxy.api.state import CATALOG

    for cred in hub.app[CATALOG].current.pool("up").credentials:
        cred.state, cred.until = "disabled", 1e12
    status, body = await ready(hub)
    assert status == 503 and body["reasons"] == ["provider up: no usable credential"]


async def test_server_timing_names_each_stage(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    body = {"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"Authorization": f"Bearer {hub.key}"}
    async with aiohttp.ClientSession() as s:
        for stream in (False, True):
            url = hub.url + "/v1/chat/completions"
            async with s.post(url, json={**body, "stream": stream}, headers=auth) as r:
                assert r.status == 200
                timing = r.headers["Server-Timing"]
                await r.read()
            names = [part.split(";")[0].strip() for part in timing.split(",")]
            assert names == ["auth", "admit", "upstream", "total"], timing


async def test_a_failed_bind_cleans_up_and_raises(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"providers": [{"name": "demo", "type": "fake"}]})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await start(settings, port=taken.getsockname()[1])
    left = [t for t in asyncio.all_tasks() if t.get_name() == "hubproxy-writer" and not t.done()]
    assert left == []  # the writer (and the rest of the resources) went down
