"""The dashboard's fixtures: a hub with the demo provider and a fake upstream, an admin and a
member, and headless Chromium (the distribution's package) driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubproxy.api.state import WRITER
from tests.conftest import Hub, HubFactory, add_key
from tests.fakes.openai_upstream import FakeOpenAI

playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RATES = [
    {"model": "demo/echo", "input": "1", "output": "2"},
    {"model": "up/e500", "input": "1", "output": "1"},
    {"model": "up/gated", "input": "1", "output": "1"},
]
MASTER_KEY = bytes(range(32)).hex()
DOCS = Path(__file__).resolve().parents[2] / "docs"
TIMEOUT_MS = 10_000  # every wait in the browser is bounded


@dataclass
class Dash:
    hub: Hub
    root: str  # an admin's key; alice (a member) has hub.key
    fake: FakeOpenAI
    shots: Path
    upstream_url: str  # the fake's base URL (…/v1) on loopback

    @property
    def alice(self) -> str:
        return self.hub.key

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """An admin API call over raw HTTP with the admin's key; it must succeed."""
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                method, self.hub.url + path, json=body,
                headers={"Authorization": f"Bearer {self.root}"},
            ) as resp,
        ):  # fmt: skip
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def grant(self, user: str, amount: str) -> None:
        await self.admin("POST", "/api/admin/credits", {"user": user, "amount": amount})

    async def chat(self, n: int, key: str | None = None, model: str = "demo/echo") -> None:
        async with self.hub.openai(api_key=key or self.alice) as client:
            for i in range(n):
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"hello {i}"}]
                )
        await self.hub.app[WRITER].flush()

    async def sign_in(self, page: Any, key: str) -> None:
        await page.goto(self.hub.url + "/ui/login")
        await page.get_by_label("Your hub key").fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(self.hub.url + "/ui/")

    async def shot(self, page: Any, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        return path


@pytest.fixture
async def dash(hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], tmp_path: Path) -> Dash:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    fake, base_url = upstream
    (tmp_path / "master.key").write_text(MASTER_KEY)  # credentials added in the UI are sealed
    hub = await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {"name": "up", "type": "openai", "base_url": base_url, "api_key": "sk-up-0000001",
             "idle_timeout_s": 5.0, "connect_timeout_s": 1.0},
        ],
        billing={"mode": "credits", "rates": RATES},
        secrets={"key_file": "master.key"},
        security={"allow_private_upstreams": True},  # providers added in the UI: the fake
    )  # fmt: skip
    shots = tmp_path / "screenshots"
    shots.mkdir()
    d = Dash(hub, add_key(hub.settings, "root", "admin"), fake, shots, base_url)
    await d.grant("alice", "25")
    return d


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (own cookies) at 1280 px; dialogs are recorded and accepted."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.dialogs = []

    async def on_dialog(dialog: Any) -> None:
        page.dialogs.append((dialog.type, dialog.message))
        await dialog.accept()

    page.on("dialog", on_dialog)
    page.console_errors = []
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()


def save_doc_screenshot(path: Path) -> None:
    """The README's picture of the overview is the one this run took."""
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(path, DOCS / "dashboard.png")
