"""AIGNE's own client SDK, unmodified, against a running hubproxy: AIGNEHubChatModel (whole
and streamed), AIGNEHubImageModel and models(), given only baseURL and apiKey.

The SDK (@aigne/aigne-hub, pinned in tests/node/package.json and its lock) is installed by
`make node-deps` (which `.ci/run` runs) into tests/node/node_modules. Without node, or without
that install, the test is skipped and says why."""

from __future__ import annotations

import asyncio
import os
import shutil
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from hubproxy.api.state import CREDITS
from tests.conftest import HubFactory
from tests.test_media_e2e import give

NODE_DIR = Path(__file__).parent / "node"
SDK = NODE_DIR / "node_modules" / "@aigne" / "aigne-hub" / "package.json"


@pytest.fixture
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: AIGNE's SDK cannot be run")
    if not SDK.exists():
        pytest.skip("AIGNE's SDK is not installed: run `make node-deps` (tests/node)")
    return found


async def test_aignes_sdk_works_unmodified(hub_factory: HubFactory, node: str) -> None:
    hub = await hub_factory(
        [{"name": "demo", "type": "fake", "models": ["echo", "painter"]}],
        billing={"mode": "credits", "rates": [
            {"model": "demo/echo", "input": "3", "output": "7"},
            {"model": "demo/painter", "type": "image", "per_image": "0.0125"},
        ]},
    )  # fmt: skip
    give(hub, 1_000_000)
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    env = {**os.environ, "HUB_URL": hub.url, "HUB_KEY": hub.key, "CHAT_MODEL": "demo/echo",
           "IMAGE_MODEL": "demo/painter"}  # fmt: skip
    for name in ("AIGNE_HUB_API_URL", "AIGNE_HUB_API_KEY", "BLOCKLET_AIGNE_API_URL",
                 "BLOCKLET_AIGNE_API_CREDENTIAL", "BLOCKLET_AIGNE_API_PROVIDER",
                 "BLOCKLET_AIGNE_API_MODEL"):  # fmt: skip
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        node, "sdk_check.mjs", cwd=NODE_DIR, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, stderr.decode()
    out = orjson.loads(stdout.strip().splitlines()[-1])
    rows = hub.calls()
    debits = [r["credits"] for r in rows]

    def micro(value: float) -> int:
        return int(Decimal(repr(value)) * 1_000_000)

    assert out["whole"]["text"] == "You said: hello sdk"
    assert micro(out["whole"]["usage"]["aigneHubCredits"]) == debits[0] > 0
    assert out["stream"]["text"] == "You said: stream sdk"
    assert micro(out["stream"]["usage"]["aigneHubCredits"]) == debits[1] > 0
    assert out["image"]["count"] == 1 and out["image"]["type"] == "file"
    assert out["image"]["head"] == "89504e470d0a1a0a"  # a PNG
    assert micro(out["image"]["usage"]["aigneHubCredits"]) == debits[2] == 12_500
    assert ["demo", "echo", "chat", "0.000003", "0.000007"] in out["models"]
    assert out["imageModels"] == [["demo", "painter", "image"]]
    assert [(r["type"], r["stream"], r["status"]) for r in rows] == [
        ("chat", 0, "success"), ("chat", 1, "success"), ("image", 0, "success")]  # fmt: skip
    assert all(r["app_id"] and r["app_id"].startswith("@aigne/aigne-hub:") for r in rows)
