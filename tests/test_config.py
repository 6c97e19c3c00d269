"""Config: strict validation that names the file, the key and the fix; env overrides; the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hubproxy import config
from hubproxy.config import ConfigError

DEMO = '[[providers]]\nname = "demo"\ntype = "fake"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "hub.toml") in message, "the error must name the file"
    assert "Fix" in message, "the error must say how to fix it"
    return message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    assert "'hots'" in refusal(tmp_path, '[server]\nhots = "x"\n' + DEMO)
    assert "'nope'" in refusal(tmp_path, "[nope]\n" + DEMO)
    assert "'api_kee'" in refusal(tmp_path, DEMO + 'api_kee = "x"\n')


def test_wrong_type_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[server]\nport = "8080"\n' + DEMO)
    assert "[server] port" in message and "whole number" in message
    assert "[server] port" in refusal(tmp_path, "[server]\nport = 70000\n" + DEMO)
    assert "models" in refusal(tmp_path, DEMO + 'models = "gpt"\n')


def test_missing_env_var_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBPROXY_TEST_MISSING_KEY", raising=False)
    text = (
        '[[providers]]\nname = "openai"\ntype = "openai"\nbase_url = "https://x/v1"\n'
        'api_key_env = "HUBPROXY_TEST_MISSING_KEY"\n'
    )
    message = refusal(tmp_path, text)
    assert "HUBPROXY_TEST_MISSING_KEY" in message and "api_key_env" in message
    monkeypatch.setenv("HUBPROXY_TEST_MISSING_KEY", "sk-from-env-0123456789")
    [provider] = config.load(write(tmp_path, text)).providers
    assert provider.api_keys[0].reveal() == "sk-from-env-0123456789"
    assert "sk-from-env" not in repr(provider), "a secret must never show in a repr"
    # Commands that only touch the database do not need the provider's key.
    monkeypatch.delenv("HUBPROXY_TEST_MISSING_KEY")
    assert config.load(write(tmp_path, text), secrets=False).providers[0].api_keys == ()


def test_unknown_provider_type_and_duplicate_names(tmp_path: Path) -> None:
    assert "type" in refusal(tmp_path, '[[providers]]\nname = "x"\ntype = "soap"\n')
    assert "repeated: demo" in refusal(tmp_path, DEMO + DEMO)


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, '[database]\npath = "data/x.db"\n' + DEMO))
    assert settings.database.path == tmp_path / "data" / "x.db"


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBPROXY_HOST", "0.0.0.0")
    monkeypatch.setenv("HUBPROXY_PORT", "9999")
    monkeypatch.setenv("HUBPROXY_DB", str(tmp_path / "other.db"))
    settings = config.load(write(tmp_path, "[server]\nport = 1234\n" + DEMO))
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9999)
    assert settings.database.path == tmp_path / "other.db"
    monkeypatch.setenv("HUBPROXY_PORT", "eighty")
    with pytest.raises(ConfigError, match="HUBPROXY_PORT"):
        config.load(write(tmp_path, DEMO))


def test_config_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBPROXY_CONFIG", raising=False)
    assert config.locate(None) == Path("config/hubproxy.toml")
    monkeypatch.setenv("HUBPROXY_CONFIG", "/etc/hubproxy.toml")
    assert config.locate(None) == Path("/etc/hubproxy.toml")
    assert config.locate("mine.toml") == Path("mine.toml")


def test_the_shipped_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    settings = config.load(root / "config" / "hubproxy.toml")
    assert [p.name for p in settings.providers] == ["demo"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_command(tmp_path: Path) -> None:
    good = run_cli("check-config", "--config", str(write(tmp_path, DEMO)))
    assert good.returncode == 0 and "ok" in good.stdout
    bad = run_cli("check-config", "--config", str(write(tmp_path, "[server]\nport = true\n")))
    assert bad.returncode == 2 and "[server] port" in bad.stderr
    assert "Traceback" not in bad.stderr


def provider(name: str, url: str) -> str:
    return f'[[providers]]\nname = "{name}"\ntype = "openai"\nbase_url = "{url}"\napi_key = "k"\n'


@pytest.mark.parametrize(
    "url",
    ["api.openai.com/v1", "localhost:8000/v1", "ftp://files.example/v1", "https://", "http:///v1"],
)
def test_base_url_needs_http_or_https_and_a_host(tmp_path: Path, url: str) -> None:
    message = refusal(tmp_path, provider("p", url))
    assert 'providers "p".base_url' in message and repr(url) in message and "http" in message


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/v1", "https://api.openai.com/v1", "http://[::1]:11434/v1"]
)
def test_base_url_with_a_scheme_and_host_is_accepted(tmp_path: Path, url: str) -> None:
    [p] = config.load(write(tmp_path, provider("p", url))).providers
    assert p.base_url == url


BROKEN = (
    '[server]\nport = 70000\nhots = "x"\n[log]\nlevel = "loud"\nformat = 3\n'
    '[billing]\nmode = "cash"\n[billing.meter]\nurl = "billing.example/usage"\n'
    + provider("a", "ftp://a.example/v1")
    + provider("b", "b.example")
    + '[[providers]]\nname = "c"\ntype = "soap"\n'
    + '[[providers]]\nname = "BAD NAME"\ntype = "fake"\n'
)
EVERY_PROBLEM = (
    "[server] port", "'hots'", "[log] level", "[log] format", "[billing] mode",
    "[billing.meter] url", 'providers "a".base_url', 'providers "b".base_url',
    'providers "c".type', 'providers "BAD NAME".name',
)  # fmt: skip


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = refusal(tmp_path, BROKEN)
    assert "12 problems" in message  # "c" also lacks a base_url and a key
    for part in EVERY_PROBLEM:
        assert part in message, part
    assert message.count("Fix") == 12  # each problem says how to fix it


def test_check_config_reports_every_problem(tmp_path: Path) -> None:
    bad = run_cli("check-config", "--config", str(write(tmp_path, BROKEN)))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    for part in EVERY_PROBLEM:
        assert part in bad.stderr, part


def test_read_timeout_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.load(write(tmp_path, DEMO)).server.read_timeout_s == 30.0
    text = "[server]\nread_timeout_s = 5\n" + DEMO
    assert config.load(write(tmp_path, text)).server.read_timeout_s == 5.0
    monkeypatch.setenv("HUBPROXY_READ_TIMEOUT_S", "2.5")
    assert config.load(write(tmp_path, text)).server.read_timeout_s == 2.5
    for bad in ("0", "nan", "x", "1e9"):
        monkeypatch.setenv("HUBPROXY_READ_TIMEOUT_S", bad)
        with pytest.raises(ConfigError, match="HUBPROXY_READ_TIMEOUT_S"):
            config.load(write(tmp_path, text))
    monkeypatch.delenv("HUBPROXY_READ_TIMEOUT_S")
    assert "read_timeout_s" in refusal(tmp_path, "[server]\nread_timeout_s = 0\n" + DEMO)


def test_instance_defaults_and_their_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = config.load(write(tmp_path, "[server]\nport = 8123\n" + DEMO))
    assert (settings.server.heartbeat_s, settings.server.dead_after_s) == (5.0, 30.0)
    assert settings.server.instance == ""
    assert settings.server.instance_id == f"{socket.gethostname()}:8123"  # stable on restart
    named = config.load(write(tmp_path, '[server]\ninstance = "web-1"\n' + DEMO))
    assert named.server.instance_id == "web-1"
    monkeypatch.setenv("HUBPROXY_INSTANCE", "web-2")
    assert config.load(write(tmp_path, DEMO)).server.instance_id == "web-2"
    monkeypatch.delenv("HUBPROXY_INSTANCE")
    message = refusal(tmp_path, "[server]\nheartbeat_s = 5\ndead_after_s = 9\n" + DEMO)
    assert "[server] dead_after_s" in message and "twice heartbeat_s" in message
    assert "[server] heartbeat_s" in refusal(tmp_path, "[server]\nheartbeat_s = 0\n" + DEMO)
    assert "[server] instance" in refusal(tmp_path, '[server]\ninstance = " x"\n' + DEMO)
