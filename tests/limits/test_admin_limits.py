"""Setting limits and scopes: the admin API (owners and admins; a member gets 404), the
command line, and [limits] in the config. Bad input is a 4xx naming the field (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hubproxy import config
from hubproxy.cli.main import main
from tests.conftest import Hub, HubFactory, add_key, make_settings

BACKENDS = ("sqlite", "postgres")  # the hub tests here run on both (tests/conftest.py)

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = {"model": "demo/echo", "messages": MESSAGES}


async def call(
    hub: Hub, method: str, path: str, key: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, hub.url + path, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as r,
    ):
        return r.status, await r.json()


async def test_admin_api_sets_limits_that_apply_at_once(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    root = add_key(hub.settings, "root", "admin")
    status, view = await call(hub, "PUT", "/api/admin/keys/1/limits", root, {"rpm": 1})
    assert status == 200
    assert view["limits"] == {"rpm": 1, "tpm": None, "concurrency": None}
    assert (await call(hub, "POST", "/v1/chat/completions", hub.key, CHAT))[0] == 200
    status, body = await call(hub, "POST", "/v1/chat/completions", hub.key, CHAT)
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
    # Back to the default (none): a field left out is the default, like null.
    status, view = await call(hub, "PUT", "/api/admin/keys/1/limits", root, {})
    assert view["limits"] == {"rpm": None, "tpm": None, "concurrency": None}
    assert (await call(hub, "POST", "/v1/chat/completions", hub.key, CHAT))[0] == 200

    status, view = await call(
        hub, "PUT", "/api/admin/users/alice/limits", root, {"rpm": 0, "concurrency": 3}
    )
    assert status == 200
    assert view == {"id": 1, "name": "alice", "limits": {"rpm": 0, "tpm": None, "concurrency": 3}}


async def test_admin_api_sets_a_keys_scope(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    root = add_key(hub.settings, "root", "owner")
    patch = {"models": ["openai/*", "anthropic/claude-*"], "budget": "5/day", "ttl": "30d"}
    status, view = await call(hub, "PATCH", "/api/admin/keys/1", root, patch)
    assert status == 200
    assert view["models"] == ["openai/*", "anthropic/claude-*"] and view["budget"] == "5/day"
    assert view["expires_at"] > "2026" and view["user"] == "alice"
    status, body = await call(hub, "POST", "/v1/chat/completions", hub.key, CHAT)
    assert status == 403 and body["error"]["code"] == "model_not_allowed"
    status, view = await call(
        hub, "PATCH", "/api/admin/keys/1", root, {"models": None, "expires_at": "2999-01-01"}
    )
    assert view["models"] is None and view["expires_at"] == "2999-01-01T00:00:00Z"
    assert view["budget"] == "5/day", "a field left out stays as it was"
    assert (await call(hub, "POST", "/v1/chat/completions", hub.key, CHAT))[0] == 200
    status, view = await call(hub, "GET", "/api/admin/keys/1", root)
    assert status == 200 and view["budget"] == "5/day" and view["active"] is True
    status, view = await call(
        hub, "PATCH", "/api/admin/keys/1", root, {"budget": "0.5/month", "expires_at": None}
    )
    assert view["budget"] == "0.5/month" and view["expires_at"] is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/admin/keys/1", None),
        ("PATCH", "/api/admin/keys/1", {"budget": "5/day"}),
        ("PUT", "/api/admin/keys/1/limits", {"rpm": 1}),
        ("PUT", "/api/admin/users/alice/limits", {"rpm": 1}),
    ],
)
async def test_a_member_gets_404(
    hub_factory: HubFactory, method: str, path: str, body: Any
) -> None:
    hub = await hub_factory()
    status, reply = await call(hub, method, path, hub.key, body)
    assert status == 404 and reply["error"]["code"] == "unknown_route"
    assert hub.rows("SELECT rpm, budget FROM api_keys WHERE id = 1")[0][:] == (None, None)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("PUT", "/api/admin/keys/1/limits", {"rpm": -1}, 400, "rpm"),
        ("PUT", "/api/admin/keys/1/limits", {"tpm": "many"}, 400, "tpm"),
        ("PUT", "/api/admin/keys/1/limits", {"concurrency": True}, 400, "concurrency"),
        ("PUT", "/api/admin/keys/1/limits", {"rpm": 10**13}, 400, "rpm"),
        ("PUT", "/api/admin/keys/1/limits", {"burst": 1}, 422, "burst"),
        ("PUT", "/api/admin/users/alice/limits", {"rpm": 1.5}, 400, "rpm"),
        ("PUT", "/api/admin/users/nobody/limits", {"rpm": 1}, 404, "user"),
        ("PATCH", "/api/admin/keys/1", {"budget": "5/week"}, 400, "budget"),
        ("PATCH", "/api/admin/keys/1", {"budget": "-5/day"}, 400, "budget"),
        ("PATCH", "/api/admin/keys/1", {"budget": 5}, 400, "budget"),
        ("PATCH", "/api/admin/keys/1", {"models": 3}, 400, "models"),
        ("PATCH", "/api/admin/keys/1", {"models": ["has space/*"]}, 400, "models"),
        ("PATCH", "/api/admin/keys/1", {"expires_at": "2020-01-01"}, 400, "expires_at"),
        ("PATCH", "/api/admin/keys/1", {"expires_at": "soon"}, 400, "expires_at"),
        ("PATCH", "/api/admin/keys/1", {"ttl": "30y"}, 400, "ttl"),
        ("PATCH", "/api/admin/keys/1", {"ttl": "1d", "expires_at": None}, 400, "ttl"),
        ("PATCH", "/api/admin/keys/1", {"label": "x"}, 422, "label"),
        ("PATCH", "/api/admin/keys/1", {}, 400, "body"),
        ("PATCH", "/api/admin/keys/999", {"ttl": "1d"}, 404, None),
        ("PUT", "/api/admin/keys/abc/limits", {"rpm": 1}, 404, None),
        ("PUT", "/api/admin/keys/³/limits", {"rpm": 1}, 404, None),  # a digit, not 0-9
        ("GET", "/api/admin/keys/٢", None, 404, None),  # int() reads it as 2
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field(
    hub_factory: HubFactory, method: str, path: str, body: Any, status: int, param: str | None
) -> None:
    hub = await hub_factory()
    root = add_key(hub.settings, "root", "admin")
    got, reply = await call(hub, method, path, root, body)
    assert (got, reply["error"]["param"]) == (status, param), reply
    row = hub.rows("SELECT rpm, tpm, concurrency, budget, models, expires_at FROM api_keys")[0]
    assert tuple(row) == (None,) * 6, "nothing of a refused change is applied"


# --- the command line -----------------------------------------------------------------------

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    path = tmp_path / "c.toml"
    path.write_text('[database]\npath = "h.db"\n[[providers]]\nname = "demo"\ntype = "fake"\n')

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(path)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_keys_scopes_and_limits(run: Run) -> None:
    code, out, _ = run(
        "keys", "create", "--user", "ann", "--expires", "2999-01-01",
        "--models", "openai/*,anthropic/claude-*", "--budget", "5/day",
    )  # fmt: skip
    assert code == 0 and out.strip().splitlines()[-1].startswith("hp-")
    code, out, _ = run("keys", "show", "1")
    assert code == 0
    assert "expires: 2999-01-01T00:00:00Z" in out
    assert "models:  openai/*,anthropic/claude-*" in out and "budget:  5/day" in out
    assert "limits:  rpm default, tpm default, concurrency default" in out
    code, out, _ = run("keys", "limit", "1", "--rpm", "10", "--tpm", "0")
    assert code == 0 and "limits:  rpm 10, tpm none, concurrency default" in out
    code, out, _ = run("keys", "limit", "1", "--rpm", "default", "--concurrency", "2")
    assert "limits:  rpm default, tpm none, concurrency 2" in out
    code, out, _ = run("keys", "update", "1", "--budget", "20/month", "--models", "any")
    assert code == 0 and "budget:  20/month" in out and "models:  any" in out
    code, out, _ = run("keys", "update", "1", "--expires", "never", "--budget", "none")
    assert "expires: never" in out and "budget:  none" in out
    code, out, _ = run("keys", "update", "1", "--ttl", "12h")
    assert code == 0 and "expires: never" not in out
    code, out, _ = run("users", "limit", "ann", "--rpm", "100", "--concurrency", "4")
    assert code == 0 and out.strip() == "user ann: rpm 100, tpm default, concurrency 4"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("keys", "limit", "1", "--rpm", "-1"), "--rpm"),
        (("keys", "limit", "1", "--tpm", "lots"), "--tpm"),
        (("keys", "limit", "1", "--rpm", "²"), "--rpm"),  # str.isdigit() says yes, int() no
        (("keys", "limit", "1"), "nothing to change"),
        (("keys", "limit", "9", "--rpm", "1"), "no key with id 9"),
        (("users", "limit", "nobody", "--rpm", "1"), "no user named"),
        (("users", "limit", "ann", "--concurrency", "1.5"), "--concurrency"),
        (("keys", "update", "1", "--budget", "5/week"), "--budget"),
        (("keys", "update", "1", "--budget", "abc/day"), "--budget"),
        (("keys", "update", "1", "--models", "a b"), "--models"),
        (("keys", "update", "1", "--expires", "2001-01-01"), "in the future"),
        (("keys", "update", "1", "--expires", "tomorrow"), "--expires"),
        (("keys", "update", "1", "--ttl", "5y"), "--ttl"),
        (("keys", "update", "1", "--ttl", "1d", "--expires", "2999-01-01"), "give one"),
        (("keys", "update", "1"), "nothing to change"),
        (("keys", "create", "--user", "bo", "--budget", "1/year"), "--budget"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_flag(run: Run, args: tuple[str, ...], says: str) -> None:
    assert run("keys", "create", "--user", "ann")[0] == 0
    code, _, err = run(*args)
    assert code == 2 and says in err, err
    assert "Traceback" not in err
    assert run("keys", "list")[1].count("hp-") == 1, "nothing was created"


# --- [limits] -------------------------------------------------------------------------------


def test_limits_config(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"limits": {"key_rpm": 60, "user_concurrency": 4}})
    assert settings.limits.key_rpm == 60 and settings.limits.user_concurrency == 4
    assert settings.limits.key_tpm == 0
    with pytest.raises(config.ConfigError) as info:
        make_settings(tmp_path, {"limits": {"key_rpm": -1, "rpm": 5, "user_tpm": "x"}})
    text = str(info.value)
    assert "[limits] key_rpm" in text and "'rpm'" in text and "[limits] user_tpm" in text
