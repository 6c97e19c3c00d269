"""The control plane's admin API through a running hub and raw HTTP: every endpoint as a
member (404) and as an admin, bad input, a canary key that never shows, live reload, the
credential test against a fake upstream, and a start refused for the wrong key."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hubproxy.api.state import CATALOG, WRITER
from hubproxy.app import start
from hubproxy.catalog.sealing import MasterKey, SealError
from hubproxy.store import catalog as store
from hubproxy.store import db
from hubproxy.store.migrate import migrate
from hubproxy.store.ops import apply
from tests.conftest import Hub, HubFactory, add_key, make_settings
from tests.fakes.openai_upstream import FakeOpenAI

BACKENDS = ("sqlite", "postgres")  # the hub tests here run on both (tests/conftest.py)

CANARY = "sk-CANARY-7f3e9a1c5b2d4e6f8a0b"
KEY_HEX = bytes(range(32)).hex()


@dataclass
class Admin:
    hub: Hub
    session: aiohttp.ClientSession
    root: str

    async def call(
        self, method: str, path: str, key: str | None = None, json: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key or self.root}"}
        async with self.session.request(
            method, self.hub.url + path, json=json, headers=headers
        ) as resp:
            raw = await resp.read()
            assert CANARY.encode() not in raw
            return resp.status, orjson.loads(raw) if raw else None

    async def ok(self, method: str, path: str, json: Any = None) -> Any:
        status, body = await self.call(method, path, json=json)
        assert status == 200, body
        return body


async def hub_with_key(
    hub_factory: HubFactory, tmp_path: Path, upstream_url: str, **kw: Any
) -> Hub:
    (tmp_path / "master.key").write_text(KEY_HEX)
    return await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {
                "name": "cfg",
                "type": "openai",
                "base_url": upstream_url,
                "api_key": "sk-config-0000000000",
            },
        ],
        secrets={"key_file": "master.key"},
        **kw,
    )


@pytest.fixture
async def admin(
    hub_factory: HubFactory, tmp_path: Path, upstream: tuple[FakeOpenAI, str]
) -> AsyncIterator[Admin]:
    hub = await hub_with_key(
        hub_factory, tmp_path, upstream[1], security={"allow_private_upstreams": True}
    )
    root = add_key(hub.settings, "root", "admin")
    async with aiohttp.ClientSession() as session:
        yield Admin(hub, session, root)


async def test_every_endpoint_as_member_and_admin(
    admin: Admin, upstream: tuple[FakeOpenAI, str], capsys: pytest.CaptureFixture[str]
) -> None:
    base = upstream[1]
    p = await admin.ok(
        "POST",
        "/api/admin/providers",
        {"name": "openai", "type": "openai", "base_url": base + "/", "headers": {"X-Org": "a"}},
    )
    assert p["source"] == "database" and p["base_url"] == base and p["id"].startswith("prv_")
    pid = p["id"]
    c = await admin.ok(
        "POST",
        f"/api/admin/providers/{pid}/credentials",
        {"label": "prod-1", "key": CANARY, "weight": 3},
    )
    assert c["key"] == "sk-…" + CANARY[-4:] and c["weight"] == 3 and c["state"] == "active"
    cid = c["id"]
    m = await admin.ok(
        "POST",
        "/api/admin/models",
        {"model": "openai/ok", "type": "chat", "context_window": 128000},
    )
    mid = m["id"]
    aliases = {"aliases": {"fast": ["openai/ok", "demo/echo"]}}
    calls = [
        ("GET", "/api/admin/providers", None),
        ("GET", f"/api/admin/providers/{pid}", None),
        ("PATCH", f"/api/admin/providers/{pid}", {"idle_timeout_s": 30}),
        ("GET", f"/api/admin/providers/{pid}/credentials", None),
        ("PATCH", f"/api/admin/credentials/{cid}", {"weight": 2}),
        ("POST", f"/api/admin/credentials/{cid}/test", {}),
        ("GET", "/api/admin/models", None),
        ("PATCH", f"/api/admin/models/{mid}", {"display_name": "OK model"}),
        ("PUT", "/api/admin/aliases", aliases),
        ("GET", "/api/admin/aliases", None),
    ]
    member = admin.hub.key
    deletes = [
        ("DELETE", f"/api/admin/credentials/{cid}"),
        ("DELETE", f"/api/admin/models/{mid}"),
        ("DELETE", f"/api/admin/providers/{pid}"),
        ("POST", "/api/admin/providers"),
        ("POST", f"/api/admin/providers/{pid}/credentials"),
        ("POST", "/api/admin/models"),
    ]
    for method, path, body in [*calls, *((m_, p_, {}) for m_, p_ in deletes)]:
        status, err = await admin.call(method, path, member, json=body)
        assert status == 404 and err["error"]["code"] == "unknown_route", (method, path)
    for method, path, body in calls:
        await admin.ok(method, path, body)
    got = await admin.ok("GET", f"/api/admin/providers/{pid}")
    assert got["idle_timeout_s"] == 30 and got["credentials"][0]["weight"] == 2
    assert got["credentials"][0]["successes_last_hour"] == 1  # the test call
    tested = await admin.ok("POST", f"/api/admin/credentials/{cid}/test", {"model": "ok"})
    assert tested["ok"] is True and tested["status"] == 200
    fake = upstream[0]
    assert fake.requests[-1].headers["Authorization"] == f"Bearer {CANARY}"
    assert fake.requests[-1].headers["X-Org"] == "a" and fake.requests[-1].body["max_tokens"] == 1
    models = (await admin.ok("GET", "/api/admin/models"))["data"]
    row = next(x for x in models if x["model"] == "openai/ok")
    assert row["availability"]["calls"] == 2 and row["availability"]["success_rate"] == 1.0
    assert {"model": "demo/echo"}.items() <= next(
        x for x in models if x["source"] == "config"
    ).items()
    got_aliases = await admin.ok("GET", "/api/admin/aliases")
    assert got_aliases["resolved"] == {"fast": ["openai/ok", "demo/echo"]}
    assert [str(t) for t in admin.hub.app[CATALOG].current.resolve("fast")] == [
        "openai/ok",
        "demo/echo",
    ]
    # In use by the alias: refused, nothing changed; then free it and delete everything.
    status, err = await admin.call("PATCH", f"/api/admin/models/{mid}", json={"enabled": False})
    assert status == 409 and err["error"]["code"] == "alias_in_use"
    status, err = await admin.call("DELETE", f"/api/admin/providers/{pid}")
    assert status == 409 and err["error"]["param"] == "aliases.fast[0]"
    await admin.ok("PUT", "/api/admin/aliases", {"aliases": {}})
    for method, path in deletes[:3]:
        assert (await admin.ok(method, path))["deleted"] is True
    assert admin.hub.rows("SELECT count(*) FROM providers")[0][0] == 0
    # Config providers show, read-only.
    providers = (await admin.ok("GET", "/api/admin/providers"))["data"]
    assert {p_["name"]: p_["source"] for p_ in providers} == {"cfg": "config", "demo": "config"}
    status, err = await admin.call("PATCH", "/api/admin/providers/cfg", json={"enabled": False})
    assert status == 403 and err["error"]["code"] == "read_only"
    creds = (await admin.ok("GET", "/api/admin/providers/cfg/credentials"))["data"]
    assert creds[0]["key"] == "sk-…0000"
    # The canary never reached the database file, its WAL or the logs.
    await admin.hub.app[WRITER].flush()
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(admin.hub.settings.database.path) + suffix)
        if path.exists():
            assert CANARY.encode() not in path.read_bytes(), suffix
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "type": "nope", "base_url": "http://127.0.0.1:1"}, "type"),
        ({"name": "x", "type": "openai", "base_url": "ftp://h"}, "base_url"),
        ({"name": "x", "type": "openai"}, "base_url"),
        ({"name": "Bad Name", "type": "fake"}, "name"),
        ({"name": "demo", "type": "fake"}, "name"),  # taken by the config file
        ({"name": "x", "type": "fake", "headers": {"Authorization": "Bearer x"}}, "headers"),
        ({"name": "x", "type": "fake", "connect_timeout_s": 0}, "connect_timeout_s"),
        ({"name": "x", "type": "fake", "role": "owner"}, "role"),
    ],
)
async def test_bad_provider_input_names_the_field_and_writes_nothing(
    admin: Admin, body: dict[str, Any], param: str
) -> None:
    status, err = await admin.call("POST", "/api/admin/providers", json=body)
    assert 400 <= status < 500 and err["error"]["param"] == param, err
    assert admin.hub.rows("SELECT count(*) FROM providers")[0][0] == 0


async def test_bad_credential_model_and_alias_input(admin: Admin) -> None:
    pid = (await admin.ok("POST", "/api/admin/providers", {"name": "groq", "type": "fake"}))["id"]
    await admin.ok(
        "POST",
        f"/api/admin/providers/{pid}/credentials",
        {"label": "a", "key": "sk-aaaaaaaaaaaaaaa"},
    )
    bad_credentials = [
        ({"label": "b", "key": "", "weight": 1}, "key"),
        ({"label": "b", "key": "sk-x", "weight": 0}, "weight"),
        ({"label": "b", "key": "sk-x", "weight": -2}, "weight"),
        ({"label": "b", "key": "sk-x", "weight": 1.5}, "weight"),
        ({"label": "a", "key": "sk-x", "weight": 1}, "label"),  # duplicate
    ]
    for body, param in bad_credentials:
        status, err = await admin.call("POST", f"/api/admin/providers/{pid}/credentials", json=body)
        assert 400 <= status < 500 and err["error"]["param"] == param, err
    assert admin.hub.rows("SELECT count(*) FROM provider_credentials")[0][0] == 1
    await admin.ok("POST", "/api/admin/models", {"model": "groq/llama"})
    bad_models = [
        ({"model": "groq/llama"}, "model", 409),
        ({"model": "nobody/x"}, "model", 400),
        ({"model": "groq/../x"}, "model", 400),
        ({"model": "groq/y", "type": "video"}, "type", 400),
    ]
    for body, param, code in bad_models:
        status, err = await admin.call("POST", "/api/admin/models", json=body)
        assert status == code and err["error"]["param"] == param, err
    bad_aliases = [
        ({"a": ["b"], "b": ["a"]}, "aliases.a", "alias_cycle"),
        ({"a": ["groq/not-listed"]}, "aliases.a[0]", "unknown_model"),
        ({"a": ["ghost/x"]}, "aliases.a[0]", "unknown_provider"),
    ]
    for doc, param, code in bad_aliases:
        status, err = await admin.call("PUT", "/api/admin/aliases", json={"aliases": doc})
        assert status == 400 and err["error"]["param"] == param and err["error"]["code"] == code
        assert "Fix" in err["error"]["message"]
    assert admin.hub.rows("SELECT count(*) FROM model_aliases")[0][0] == 0


async def test_a_failing_credential_is_disabled_by_its_test(
    admin: Admin, upstream: tuple[FakeOpenAI, str]
) -> None:
    pid = (
        await admin.ok(
            "POST",
            "/api/admin/providers",
            {"name": "up2", "type": "openai", "base_url": upstream[1]},
        )
    )["id"]
    cid = (
        await admin.ok(
            "POST",
            f"/api/admin/providers/{pid}/credentials",
            {"label": "old", "key": "sk-revoked-0000000000"},
        )
    )["id"]
    result = await admin.ok("POST", f"/api/admin/credentials/{cid}/test", {"model": "ok"})
    assert result["ok"] is False and result["status"] == 401
    assert result["credential"]["state"] == "disabled" and result["credential"]["resting_until"]
    await admin.hub.app[WRITER].flush()
    row = admin.hub.rows("SELECT state, last_error FROM provider_credentials WHERE id = ?", cid)[0]
    assert row["state"] == "disabled" and "401" in row["last_error"]


async def test_ssrf_guard_through_the_api(hub_factory: HubFactory, tmp_path: Path) -> None:
    hub = await hub_with_key(hub_factory, tmp_path, "http://127.0.0.1:9/v1")
    root = add_key(hub.settings, "root", "admin")
    async with aiohttp.ClientSession() as session:
        a = Admin(hub, session, root)
        for url in (
            "http://169.254.169.254/latest",
            "http://127.0.0.1:8000",
            "http://[::1]/",
            "http://10.0.0.1",
            "http://localhost:11434",
        ):
            status, err = await a.call(
                "POST",
                "/api/admin/providers",
                json={"name": "x", "type": "openai", "base_url": url},
            )
            assert status == 400 and err["error"]["code"] == "upstream_address_blocked", url
        await a.ok(
            "POST",
            "/api/admin/providers",
            {"name": "pub", "type": "openai", "base_url": "https://93.184.216.34/v1"},
        )


async def test_a_change_written_elsewhere_is_served_within_2_s(admin: Admin) -> None:
    live = admin.hub.app[CATALOG]
    conn = admin.hub.db()
    try:  # as the CLI does: straight into the database
        apply(
            conn,
            [
                store.insert_provider(
                    "prv_cli",
                    {
                        "name": "cli",
                        "type": "fake",
                        "base_url": "",
                        "headers": {},
                        "api_version": "",
                        "connect_timeout_s": 1.0,
                        "idle_timeout_s": 1.0,
                        "enabled": True,
                    },
                )
            ],
        )
        apply(conn, store.replace_aliases({"pinned": ["cli/model-a"]}))
    finally:
        conn.close()
    started = asyncio.get_running_loop().time()
    await admin.hub.eventually(lambda: "pinned" in live.current.aliases, seconds=2.0)
    assert asyncio.get_running_loop().time() - started < 2.0
    assert [str(t) for t in live.current.resolve("pinned")] == ["cli/model-a"]


async def test_the_wrong_key_or_no_key_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "right.key").write_text(KEY_HEX)
    (tmp_path / "wrong.key").write_text(bytes(32).hex())
    settings = make_settings(tmp_path, {"secrets": {"key_file": "right.key"}})
    conn = db.connect(settings.database)
    migrate(conn)
    sealed = MasterKey(bytes(range(32))).seal(CANARY, credential_id="crd_1", provider_id="prv_1")
    apply(
        conn,
        [
            store.insert_provider(
                "prv_1",
                {
                    "name": "p",
                    "type": "fake",
                    "base_url": "",
                    "headers": {},
                    "api_version": "",
                    "connect_timeout_s": 1.0,
                    "idle_timeout_s": 1.0,
                    "enabled": True,
                },
            ),
            store.insert_credential(
                "crd_1", "prv_1", label="a", weight=1, sealed=sealed, hint="sk-…4e6f"
            ),
        ],
    )
    conn.close()
    runner, _ = await start(settings, port=0)
    assert runner.app[CATALOG].current.credentials["crd_1"].key == CANARY
    await runner.cleanup()
    threads = {t.ident for t in threading.enumerate()}
    for raw, message in (({"key_file": "wrong.key"}, "the wrong key"), ({}, "no master key")):
        bad = make_settings(tmp_path, {"secrets": raw} if raw else {})
        with pytest.raises(SealError, match=message):
            runner, _ = await start(bad, port=0)
    # A refused start closes what it opened: a database thread left behind would keep the
    # process from exiting after the refusal.
    left = [t.name for t in threading.enumerate() if t.ident not in threads and t.is_alive()]
    assert left == []
