"""`hubproxy secrets rotate` while a server serves calls through a sealed credential: no call
is lost, the server keeps the keys it holds, and the next start needs (and takes) the new key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from hubproxy.catalog.sealing import SealError
from tests.conftest import HubFactory, add_key
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "sk-ROTATION-0123456789abcdef"
BODY = {"model": "lp/ok", "messages": [{"role": "user", "content": "hi"}]}


async def test_rotation_under_load_loses_no_call(
    hub_factory: HubFactory, tmp_path: Path, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    (tmp_path / "master.key").write_text(bytes(range(32)).hex())
    hub = await hub_factory(
        secrets={"key_file": "master.key"}, security={"allow_private_upstreams": True}
    )
    root = add_key(hub.settings, "root", "admin")
    admin = {"Authorization": f"Bearer {root}"}
    member = {"Authorization": f"Bearer {hub.key}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(
            hub.url + "/api/admin/providers", headers=admin,
            json={"name": "lp", "type": "openai", "base_url": base_url},
        ) as r:  # fmt: skip
            assert r.status in (200, 201), await r.text()
            provider = await r.json()
        async with s.post(
            hub.url + f"/api/admin/providers/{provider['id']}/credentials", headers=admin,
            json={"label": "only", "key": KEY, "weight": 1},
        ) as r:  # fmt: skip
            assert r.status in (200, 201), await r.text()

        async def call() -> int:
            async with s.post(hub.url + "/v1/chat/completions", json=BODY, headers=member) as r:
                await r.read()
                return r.status

        async def load(stop: asyncio.Event) -> list[int]:
            statuses: list[int] = []
            for _ in range(400):  # bounded: until the rotation is done, at most 400 calls
                statuses += await asyncio.gather(*(call() for _ in range(4)))
                if stop.is_set():
                    break
            return statuses

        new_key = bytes(range(32, 64)).hex()
        (tmp_path / "new.key").write_text(new_key)
        stop = asyncio.Event()
        running = asyncio.ensure_future(load(stop))
        await asyncio.sleep(0.2)  # calls under way
        proc = await asyncio.create_subprocess_exec(
            *hub.cli("secrets", "rotate", "--new-key-file", str(tmp_path / "new.key")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        await asyncio.sleep(0.5)  # and the server follows the re-sealed rows, serving on
        stop.set()
        statuses = await asyncio.wait_for(running, 60)
        assert statuses and set(statuses) == {200}, statuses  # not one call refused or lost
        assert await call() == 200  # the running server keeps the key it holds
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in fake.requests)
    await hub.eventually(lambda: len(hub.calls()) == len(statuses) + 1)
    assert {r["status"] for r in hub.calls()} == {"success"}
    # The next start needs the new key: the old one is refused, naming why.
    await hub.runner.cleanup()
    with pytest.raises(SealError):
        await hub_factory(
            secrets={"key_file": "master.key"}, security={"allow_private_upstreams": True}
        )
    (tmp_path / "master.key").write_text(new_key)
    again = await hub_factory(
        secrets={"key_file": "master.key"}, security={"allow_private_upstreams": True}
    )
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            again.url + "/v1/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {again.key}"},
        ) as r,  # fmt: skip
    ):
        assert r.status == 200
