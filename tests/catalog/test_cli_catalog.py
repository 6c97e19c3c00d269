"""The control plane from the command line: providers, credentials (key from stdin),
models, aliases, and secrets gen-key / rotate; bad input exits 2."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from hubproxy.cli.main import main

CANARY = "sk-CLI-CANARY-0123456789abcdef"
BACKENDS = ("sqlite", "postgres")  # each test here runs on both (tests/conftest.py)
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str | None,
) -> Run:
    config = tmp_path / "c.toml"
    (tmp_path / "master.key").write_text(bytes(range(32)).hex())
    config.write_text(
        '[database]\npath = "h.db"\n'
        + (f'url = "{database_url}"\n' if database_url else "")
        + '[secrets]\nkey_file = "master.key"\n'
        '[[providers]]\nname = "demo"\ntype = "fake"\nmodels = ["echo"]\n'
    )
    monkeypatch.delenv("HUBPROXY_SECRET_KEY", raising=False)

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*args, "--config", str(config)])
        out = capsys.readouterr()
        assert CANARY not in out.out + out.err
        return code, out.out, out.err

    return run


def test_providers_credentials_models_aliases(run: Run, tmp_path: Path) -> None:
    assert run("providers", "add", "groq", "--type", "fake")[0] == 0
    code, _, err = run("providers", "add", "groq", "--type", "fake")
    assert code == 2 and "exists already" in err
    code, _, err = run("providers", "add", "x", "--type", "nope")
    assert code == 2 and "(type)" in err
    code, _, err = run(
        "providers", "add", "x", "--type", "openai", "--base-url", "http://169.254.169.254"
    )
    assert code == 2 and "metadata" in err
    assert "groq" in run("providers", "list")[1]
    assert (
        run(
            "credentials", "add", "groq", "--label", "prod-1", "--weight", "3", stdin=CANARY + "\n"
        )[0]
        == 0
    )
    code, _, err = run("credentials", "add", "groq", "--label", "prod-2", stdin="\n")
    assert code == 2 and "empty" in err
    code, _, err = run(
        "credentials", "add", "groq", "--label", "prod-2", "--weight", "0", stdin="k\n"
    )
    assert code == 2 and "weight" in err
    listing = run("credentials", "list")[1]
    assert "prod-1" in listing and "sk-…cdef" in listing and "active" in listing
    assert "ok" in run("credentials", "test", "groq/prod-1")[1]
    assert run("credentials", "disable", "groq/prod-1")[0] == 0
    assert "disabled (by hand)" in run("credentials", "list", "groq")[1]
    assert run("credentials", "enable", "groq/prod-1")[0] == 0
    assert run("models", "add", "groq/llama", "--type", "chat", "--context", "128000")[0] == 0
    assert run("models", "add", "groq/../x")[0] == 2
    assert "128000" in run("models", "list")[1]
    assert run("aliases", "set", "fast", "groq/llama", "demo/echo")[0] == 0
    code, _, err = run("aliases", "set", "loop", "loop")
    assert code == 2 and "cycle" in err
    code, _, err = run("aliases", "set", "bad", "groq/missing")
    assert code == 2 and "models add" in err
    assert "groq/llama, demo/echo" in run("aliases", "list")[1]
    code, _, err = run("models", "update", "groq/llama", "--enabled", "false")
    assert code == 2 and "alias" in err
    assert run("aliases", "remove", "fast")[0] == 0
    assert run("providers", "remove", "groq")[0] == 0
    assert run("credentials", "list")[1].count("\n") == 1  # the header only
    if (tmp_path / "h.db").exists():  # SQLite: not even a freed page holds the key in clear
        db = (tmp_path / "h.db").read_bytes() + (tmp_path / "h.db-wal").read_bytes()
        assert CANARY.encode() not in db


def test_rotate_reseals_under_the_new_key(run: Run, tmp_path: Path) -> None:
    code, out, _ = run("secrets", "gen-key")
    new_key = out.strip()
    assert code == 0 and len(new_key) == 44
    run("providers", "add", "groq", "--type", "fake")
    run("credentials", "add", "groq", "--label", "a", stdin=CANARY)
    run("credentials", "add", "groq", "--label", "b", stdin=CANARY + "-b")
    assert run("secrets", "rotate")[0] == 2  # no new key given
    (tmp_path / "new.key").write_text(new_key)
    code, out, _ = run("secrets", "rotate", "--new-key-file", str(tmp_path / "new.key"))
    assert code == 0 and "re-sealed 2 credential(s)" in out
    code, _, err = run("credentials", "test", "groq/a")
    assert code == 2 and "the wrong key" in err
    (tmp_path / "master.key").write_text(new_key)
    assert run("credentials", "test", "groq/a")[0] == 0
