"""Shared fixtures: a real hubproxy on loopback, fake upstreams, and real SDK clients."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hubproxy import config
from hubproxy.api.state import WRITER
from hubproxy.app import start
from hubproxy.gateway import auth
from hubproxy.store import accounts, db
from hubproxy.store.migrate import migrate
from hubproxy.store.ops import apply
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.wire import serve
from tests.pg import pg_server  # noqa: F401  (the session's PostgreSQL, for the store tests)
from tests.store.backends import pg_template  # noqa: F401  (its migrated template database)


@dataclass
class Hub:
    url: str
    key: str
    settings: config.Settings
    runner: web.AppRunner

    @property
    def app(self) -> web.Application:
        return self.runner.app

    def db(self) -> sqlite3.Connection:
        """A connection that sees every call a client has seen complete: what the server has
        journaled but not yet committed is committed first."""
        writer = self.app.get(WRITER)
        if writer is not None:
            writer.commit_queued()
        return db.connect(self.settings.database)

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        conn = self.db()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def calls(self) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM model_calls ORDER BY id")

    def cli(self, *args: str) -> list[str]:
        """The argv of a `hubproxy` command against this hub's config."""
        return [sys.executable, "-m", "hubproxy", *args, "--config", str(self.settings.source)]

    def openai(self, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=kw.pop("api_key", self.key), max_retries=0, **kw
        )

    async def eventually(self, check: Callable[[], bool], seconds: float = 3.0) -> None:
        """Wait (bounded) for something the server does in the background."""
        for _ in range(int(seconds / 0.02)):
            if check():
                return
            await asyncio.sleep(0.02)
        assert check(), "condition not met in time"


def to_toml(raw: dict[str, Any]) -> str:
    """Enough TOML for test configs: tables of scalars and lists, and [[providers]]."""

    def key(k: Any) -> str:
        bare = str(k).replace("_", "").replace("-", "").isalnum()
        return str(k) if bare else value(str(k))

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines: list[str] = []
    for name, table in raw.items():
        for entry in table if isinstance(table, list) else [table]:
            lines.append(f"[[{name}]]" if isinstance(table, list) else f"[{name}]")
            lines += [f"{k} = {value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def make_settings(tmp_path: Path, raw: dict[str, Any]) -> config.Settings:
    """Write the config file (CLI subprocesses read it too) and load it the normal way."""
    raw = {"database": {"path": "hub.db"}, "log": {"format": "json"}, **raw}
    path = tmp_path / "hubproxy.toml"
    path.write_text(to_toml(raw))
    return config.load(path)


def add_key(settings: config.Settings, user: str = "alice", role: str = "member") -> str:
    conn = db.connect(settings.database)
    try:
        migrate(conn)
        row = accounts.user_by_name(conn, user)
        if row is None:
            apply(conn, [accounts.create_user(user, role)])
            row = accounts.user_by_name(conn, user)
        key = auth.new_key()
        apply(
            conn,
            [accounts.create_key(row["id"], auth.hash_key(key), auth.visible_prefix(key), "test")],
        )
        return key
    finally:
        conn.close()


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/v1"))
    finally:
        fake.release.set()
        await server.close()


@pytest.fixture
async def claude() -> AsyncIterator[FakeAnthropic]:
    """A fake Anthropic Messages API on loopback (tests/fakes/anthropic_upstream.py)."""
    fake = FakeAnthropic()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    """A fake Gemini API on loopback (tests/fakes/gemini_upstream.py)."""
    fake = FakeGemini()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    runners: list[web.AppRunner] = []

    async def factory(providers: list[dict[str, Any]] | None = None, **sections: Any) -> Hub:
        raw = {"providers": providers or [{"name": "demo", "type": "fake", "models": ["echo"]}]}
        settings = make_settings(tmp_path, {**raw, **sections})
        key = add_key(settings)
        runner, port = await start(settings, port=0)
        runners.append(runner)
        return Hub(f"http://127.0.0.1:{port}", key, settings, runner)

    yield factory
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def hub(hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]) -> Hub:
    """hubproxy with the demo provider and an OpenAI-compatible provider 'up' on the fake."""
    _, base_url = upstream
    return await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {
                "name": "up",
                "type": "openai",
                "base_url": base_url,
                "api_key": "sk-upstream-SECRET-key-000000001",
                "idle_timeout_s": 1.0,
                "connect_timeout_s": 1.0,
            },
        ]
    )
