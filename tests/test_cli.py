"""The command line's admin operations, run in-process against a fresh database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hubproxy.cli.main import main

DEMO = '[database]\npath = "h.db"\n[[providers]]\nname = "demo"\ntype = "fake"\n'

BACKENDS = ("sqlite", "postgres")  # each test here runs on both (tests/conftest.py)

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], database_url: str | None) -> Run:
    config = tmp_path / "c.toml"
    url = f'url = "{database_url}"\n' if database_url else ""
    config.write_text(DEMO.replace("[database]\n", "[database]\n" + url))

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(config)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_users_keys_and_their_errors(run: Run) -> None:
    assert run("users", "create", "root", "--role", "admin")[0] == 0
    code, _, err = run("users", "create", "root")
    assert code == 2 and "exists already" in err
    code, out, _ = run("keys", "create", "--user", "ann", "--label", "laptop")
    key = out.strip().splitlines()[-1]
    assert code == 0 and key.startswith("hp-") and "created user ann (member)" in out
    listing = run("keys", "list")[1]
    assert "laptop" in listing and key not in listing and key[:10] in listing
    assert run("keys", "revoke", "1")[0] == 0
    assert "revoked already" in run("keys", "revoke", "1")[1]
    assert run("keys", "revoke", "99")[0] == 2


def test_credits_and_rates(run: Run, tmp_path: Path) -> None:
    run("users", "create", "ann")
    assert "balance 25.5" in run("credits", "grant", "ann", "25.5")[1]
    assert "balance 23.5" in run("credits", "grant", "ann", "-2", "--kind", "adjustment")[1]
    code, _, err = run("credits", "grant", "ann", "-2")
    assert code == 2 and "adjustment" in err
    code, _, err = run("credits", "grant", "ann", "0.0000001")
    assert code == 2 and "6 decimals" in err
    assert run("credits", "grant", "nobody", "1")[0] == 2
    assert "23.5     23.5" in run("credits", "balance", "ann")[1]

    assert run("rates", "set", "demo/echo", "--input", "0.15", "--output", "0.6")[0] == 0
    assert run("rates", "set", "no-slash", "--input", "1", "--output", "1")[0] == 2
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps([{"model": "demo/echo", "input": "0.15", "output": "0.6"}]))
    dry = run("rates", "bulk", str(costs), "--margin", "20", "--dry-run")[1]
    assert "0.18" in dry and "nothing changed" in dry
    assert "0.15" in run("rates", "list")[1]
    run("rates", "bulk", str(costs), "--margin", "20")
    assert "0.18   0.72" in run("rates", "list")[1]


def test_calls_csv_has_a_header_even_when_empty(run: Run) -> None:
    out = run("calls", "--format", "csv")[1]
    header = next(csv.reader(io.StringIO(out)))
    assert header[:3] == ["id", "created_at", "user"]
    assert run("usage", "--group-by", "model")[0] == 0
