"""A hub on PostgreSQL end to end: `[database] url`, `hubproxy migrate`, an operator's
bootstrap through the CLI, then the admin API, the openai SDK with credits, and the reports,
against a real PostgreSQL (tests/pg.py). The suites run on both backends elsewhere (modules
with BACKENDS); this file holds what is PostgreSQL's own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from hubproxy import config
from hubproxy.api.state import CREDITS, READER, STORE
from hubproxy.app import start
from hubproxy.config import ConfigError
from hubproxy.store import db, ledger
from hubproxy.store.backend import StoreUnavailable
from hubproxy.store.migrate import available, migrations_dir
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.reader import PgReader
from tests.conftest import HubFactory, make_settings, to_toml
from tests.e2e import provider, sdk, settled
from tests.fakes.openai_upstream import FakeOpenAI
from tests.pg import Server
from tests.test_process import free_port
from tests.test_responses_e2e import ask

BACKENDS = ("postgres",)
MESSAGES = [{"role": "user", "content": "hi there"}]  # 9 prompt, 4 completion tokens (demo)
RATE = {"model": "demo/echo", "input": "1", "output": "2"}  # micro-credits per token


def cli(settings: config.Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", *args, "--config", str(settings.source)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def api(url: str, method: str, path: str, key: str, json: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(
        method, url + path, json=json, headers={"Authorization": f"Bearer {key}"}
    ) as r:  # fmt: skip
        return r.status, await r.json()


async def test_migrate_creates_the_schema_once(tmp_path: Path, pg_template: Server) -> None:
    admin = await schema.connect(pg_template.url("postgres"))
    try:
        await admin.execute("CREATE DATABASE hubproxy_empty")
    finally:
        await admin.close()
    settings = make_settings(tmp_path, {}, database_url=pg_template.url("hubproxy_empty"))
    first = cli(settings, "migrate")
    assert first.returncode == 0, first.stderr
    every = ", ".join(p.name for p in available(migrations_dir("postgres")))
    assert first.stdout.strip() == f"applied: {every}"
    again = cli(settings, "migrate")
    assert again.returncode == 0 and again.stdout.strip() == "up to date"
    conn = await schema.connect(pg_template.url("hubproxy_empty"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM revisions") > 0
    finally:
        await conn.close()


async def test_an_operator_bootstraps_with_the_cli_and_the_hub_bills_on_postgres(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(billing={"mode": "credits", "rates": [RATE]})
    assert hub.app[STORE].dialect == "postgres"
    assert isinstance(hub.app[READER], PgReader)
    # The CLI, as an operator bootstraps a hub: an admin and their key, credits, a rate.
    created = cli(hub.settings, "keys", "create", "--user", "root")
    assert created.returncode == 0, created.stderr
    assert cli(hub.settings, "users", "create", "boss", "--role", "admin").returncode == 0
    made = cli(hub.settings, "keys", "create", "--user", "boss", "--label", "ops")
    assert made.returncode == 0, made.stderr
    root = made.stdout.strip().splitlines()[-1]
    again = cli(hub.settings, "users", "create", "boss")
    assert again.returncode == 2 and "exists already" in again.stderr
    rate = cli(hub.settings, "rates", "set", "demo/other", "--input", "3", "--output", "4")
    assert rate.returncode == 0, rate.stderr
    granted = cli(hub.settings, "credits", "grant", "alice", "1")
    assert granted.returncode == 0, granted.stderr
    listed = cli(hub.settings, "users", "list")
    assert {"alice", "root", "boss"} <= {line.split()[1] for line in listed.stdout.splitlines()[1:]}
    credits = hub.app[CREDITS]
    await hub.eventually(lambda: credits.balances.get(1) == 1_000_000, seconds=5)

    # Plain and streamed chat through the openai SDK, billed: 9*1 + 4*2 = 17 each.
    client = hub.openai(timeout=10.0)
    reply = await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    assert reply.choices[0].message.content == "You said: hi there"
    stream = await client.chat.completions.create(model="demo/echo", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "You said: hi there"
    status, balance = await api(hub.url, "GET", "/api/user/balance", hub.key)
    assert status == 200 and balance["balance"] == 1_000_000 - 2 * 17
    await hub.settle()
    rows = hub.rows("SELECT status, credits, stream FROM model_calls ORDER BY id")
    assert [tuple(r) for r in rows] == [("success", 17, 0), ("success", 17, 1)]
    [ledger] = hub.rows(
        "SELECT (SELECT balance FROM credit_balances WHERE user_id = 1) AS balance, "
        "(SELECT sum(amount) FROM credit_ledger WHERE user_id = 1) AS total"
    )
    assert ledger["balance"] == ledger["total"] == 1_000_000 - 34

    # The admin API: a user with a first key, a duplicate refused, a grant, a call with it.
    status, bob = await api(hub.url, "POST", "/api/admin/users", root, {"name": "bob"})
    assert status == 200, bob
    status, dup = await api(hub.url, "POST", "/api/admin/users", root, {"name": "bob"})
    assert status == 409 and dup["error"]["code"] == "user_exists"
    status, grant = await api(
        hub.url, "POST", "/api/admin/credits", root, {"user": "bob", "amount": "0.01"}
    )
    assert status == 200 and grant["balance"] == 10_000, grant
    bobs = hub.openai(api_key=bob["key"], timeout=10.0)
    await bobs.chat.completions.create(model="demo/echo", messages=MESSAGES)
    status, own = await api(hub.url, "GET", "/api/user/balance", bob["key"])
    assert own["balance"] == 10_000 - 17
    status, history = await api(hub.url, "GET", "/api/admin/users/bob/grants", root)
    assert [(g["kind"], g["amount"]) for g in history["data"]] == [("grant", 10_000)]

    # A key made and revoked through the API: refused at once after the revocation.
    status, second = await api(hub.url, "POST", "/api/user/keys", bob["key"], {"label": "two"})
    assert status == 200, second
    await hub.openai(api_key=second["key"]).models.list()
    status, _ = await api(hub.url, "DELETE", f"/api/user/keys/{second['id']}", bob["key"])
    assert status == 200
    with pytest.raises(openai.AuthenticationError):
        await hub.openai(api_key=second["key"]).models.list()

    # What the dashboard reads: usage (rollups) and the call list.
    await hub.settle()
    status, usage = await api(hub.url, "GET", "/api/admin/usage?from=0&group_by=model", root)
    assert status == 200, usage
    assert usage["totals"]["requests"] == 3 and usage["totals"]["credits"] == 3 * 17
    status, calls = await api(hub.url, "GET", "/api/admin/calls", root)
    assert [c["user"] for c in calls["data"]] == ["bob", "alice", "alice"]


async def test_rollups_merge_drain_after_drain_into_one_row(hub_factory: HubFactory) -> None:
    """Each drain upserts its sums into the rows earlier drains wrote (histograms too); two
    instances' drains: tests/store/test_backends.py."""
    hub = await hub_factory()
    client = hub.openai(timeout=10.0)
    for _ in range(2):
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    await hub.settle()
    [row] = hub.rows("SELECT requests, duration_hist FROM usage_rollups WHERE period = 'day'")
    assert row["requests"] == 2 and sum(orjson.loads(row[1])) == 2
    await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    await hub.settle()
    [row] = hub.rows("SELECT requests, duration_hist FROM usage_rollups WHERE period = 'day'")
    assert row["requests"] == 3 and sum(orjson.loads(row[1])) == 3


def test_the_url_comes_from_the_config_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hubproxy.toml"
    path.write_text(to_toml({"database": {"url": "postgresql://hub:pw-in-file@db/hub"}}))
    settings = config.load(path)
    assert settings.database.dialect == "postgres"
    assert settings.database.where() == "postgresql://hub:***@db/hub"
    assert "pw-in-file" not in repr(settings)
    monkeypatch.setenv("HUBPROXY_DATABASE_URL", "postgres://hub:s3cret-from-env@db:5433/x")
    assert config.load(path).database.where() == "postgres://hub:***@db:5433/x"
    monkeypatch.delenv("HUBPROXY_DATABASE_URL")
    path.write_text(to_toml({"database": {"url": "mysql://hub:hunter2-secret@db/hub"}}))
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert "[database] url" in message and "postgresql://" in message
    assert "hunter2-secret" not in message
    path.write_text(to_toml({"database": {"path": "hub.db"}}))
    assert config.load(path).database.dialect == "sqlite"


def test_backup_and_restore_refuse_on_postgres(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {}, database_url="postgresql://hub@127.0.0.1:9/hub")
    for command in ("backup", "restore"):
        done = cli(settings, command, str(tmp_path / "copy.db"))
        assert done.returncode == 2
        assert "pg_dump" in done.stderr and command in done.stderr


async def test_a_second_instance_on_the_same_journal_refuses_to_start(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    hub = await hub_factory()
    with pytest.raises(StoreUnavailable, match="journal"):
        await start(hub.settings, port=0)
    await hub.openai().models.list()  # the first one still serves


async def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    url = "postgresql://hub:pw-not-shown@127.0.0.1:9/hub"
    settings = make_settings(tmp_path, {"server": {"port": free_port()}}, database_url=url)
    for command in ("migrate", "serve", "users"):
        args = (command, "list") if command == "users" else (command,)
        done = cli(settings, *args)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "cannot connect to [database] url" in done.stderr
        assert "pw-not-shown" not in done.stdout + done.stderr
    checked = cli(settings, "check-config")
    assert checked.returncode == 0 and "postgresql://hub:***@127.0.0.1:9/hub" in checked.stdout


async def test_reads_that_agree_run_at_once_each_in_its_own_snapshot(
    hub_factory: HubFactory,
) -> None:
    """BEGIN … COMMIT on the PostgreSQL reader pins a pooled connection to the task: tasks
    reading at once never share (or break) one another's transaction."""
    hub = await hub_factory()
    reader = hub.app[READER]
    results = await asyncio.gather(
        *(ledger.snapshot(reader) for _ in range(4)), db.key_spend(reader, 0, 0)
    )
    assert results[0] == results[3]
    async with reader.execute("SELECT 1") as cur:  # and none is left open
        assert [tuple(r) for r in await cur.fetchall()] == [(1,)]


async def test_a_responses_conversation_continues_at_once(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """The next turn reads the stored answer its client just got: the server commits what it
    journaled before reading (PostgreSQL's writer commits on its own task)."""
    hub = await hub_factory([provider("up", "openai", upstream[1], "sk-upstream-key-0000001")])
    first = await ask(hub, "up/o4-mini", False, input="My name is Ada.")
    second = await ask(
        hub, "up/o4-mini", True, input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert (await sdk(hub).responses.retrieve(second.id)).id == second.id
    rows = await settled(hub)
    assert [r["status"] for r in rows] == ["success", "success"]
