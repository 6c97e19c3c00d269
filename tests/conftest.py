"""Shared fixtures: a real hubproxy on loopback, fake upstreams, and real SDK clients."""

from __future__ import annotations

import asyncio
import os
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
from hubproxy.store import accounts
from hubproxy.store.backend import connect_blocking
from hubproxy.store.ops import apply
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.wire import serve
from tests.pg import pg_server  # noqa: F401  (the session's PostgreSQL, for the store tests)
from tests.store.backends import fresh_pg_database, pg_template  # noqa: F401


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets `BACKENDS = ("sqlite", "postgres")` runs each of its hub tests on
    each backend (the `backend` fixture); elsewhere `backend` is SQLite."""
    wanted = getattr(metafunc.module, "BACKENDS", None)
    if wanted and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", wanted, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite", or the module's parameter; HUBPROXY_TEST_BACKEND=postgres runs every other
    hub test on PostgreSQL too (a survey: some of those read the database as SQLite would)."""
    default = os.environ.get("HUBPROXY_TEST_BACKEND", "sqlite")
    return str(getattr(request, "param", default))


@dataclass
class Hub:
    url: str
    key: str
    settings: config.Settings
    runner: web.AppRunner
    _pg: sqlite3.Connection | None = None

    @property
    def app(self) -> web.Application:
        return self.runner.app

    def db(self) -> sqlite3.Connection:
        """A connection of its own (on PostgreSQL, a blocking one with sqlite3's surface).
        On SQLite it sees every call a client has seen complete: what the server has
        journaled but not yet committed is committed first, inline. PostgreSQL's writer
        commits only on its task: `await hub.settle()` before reading there."""
        writer = self.app.get(WRITER)
        if writer is not None:
            writer.commit_queued()
        conn, _ = connect_blocking(self.settings.database)
        return conn

    async def settle(self) -> None:
        """Wait until everything the server has queued is committed (both backends)."""
        await self.app[WRITER].flush()

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        if self.settings.database.url is None:
            conn = self.db()
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        self.app[WRITER].commit_queued()
        if self._pg is None:  # one connection for the test's many reads
            self._pg = self.db()
        return self._pg.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None

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


def make_settings(
    tmp_path: Path, raw: dict[str, Any], *, database_url: str | None = None
) -> config.Settings:
    """Write the config file (CLI subprocesses read it too) and load it the normal way. With
    `database_url`, the hub runs on that PostgreSQL database (`path` holds its journal)."""
    database = {"path": "hub.db", **({"url": database_url} if database_url else {})}
    raw = {"log": {"format": "json"}, **raw}
    raw["database"] = {**database, **raw.get("database", {})}
    path = tmp_path / "hubproxy.toml"
    path.write_text(to_toml(raw))
    return config.load(path)


def add_key(settings: config.Settings, user: str = "alice", role: str = "member") -> str:
    conn, _ = connect_blocking(settings.database)
    try:
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
async def database_url(request: pytest.FixtureRequest, backend: str) -> str | None:
    """On PostgreSQL, a fresh database (a copy of a migrated template) for this test."""
    if backend != "postgres":
        return None
    return await fresh_pg_database(request.getfixturevalue("pg_template"))


@pytest.fixture
async def hub_factory(tmp_path: Path, database_url: str | None) -> AsyncIterator[HubFactory]:
    hubs: list[Hub] = []

    async def factory(providers: list[dict[str, Any]] | None = None, **sections: Any) -> Hub:
        raw = {"providers": providers or [{"name": "demo", "type": "fake", "models": ["echo"]}]}
        settings = make_settings(tmp_path, {**raw, **sections}, database_url=database_url)
        key = add_key(settings)
        runner, port = await start(settings, port=0)
        hubs.append(Hub(f"http://127.0.0.1:{port}", key, settings, runner))
        return hubs[-1]

    yield factory
    for hub in hubs:
        hub.close()
        await hub.runner.cleanup()


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
