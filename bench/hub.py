"""hubproxy under test: its temp config, a hub key, its CLI, and the `hubproxy serve` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.procs import die_with_parent, python_env

PROVIDER = "up"  # the provider's name: models are asked for as "up/<model>"
ANTHROPIC_PROVIDER = "anth"  # the same upstream in Anthropic's format: "anth/<model>"
UPSTREAM_KEY = "sk-bench-not-a-real-key-000000"
USER = "bench"  # the user the hub key belongs to


def executable() -> str:
    """The venv's `hubproxy` script, next to the running Python; else the one on PATH."""
    local = Path(sys.executable).parent / "hubproxy"
    if local.exists():
        return str(local)
    found = shutil.which("hubproxy")
    if found is None:
        raise FileNotFoundError("no `hubproxy` command: run `make install` first")
    return found


def write_config(
    folder: Path,
    port: int,
    upstream_url: str,
    *,
    extra: str = "",
    name: str = "",
    server: str = "",
    database_url: str = "",
) -> Path:
    """A config like production's: access log on (level info, JSON lines to stdout). `extra`
    is appended as is (e.g. a [billing] table), `server` to the [server] table; `name` tells
    several hubproxies apart. With `database_url` the store is that PostgreSQL database (the
    path then holds only the instance's journal)."""
    path = folder / f"hubproxy{name}.toml"
    url = f'url = "{database_url}"\n' if database_url else ""
    path.write_text(
        f"""# Written by the bench; removed with its folder.
[server]
host = "127.0.0.1"
port = {port}
{server}
[database]
{url}path = "{(folder / f"hubproxy{name}.db").as_posix()}"

[log]
level = "info"
format = "json"

[[providers]]
name = "{PROVIDER}"
type = "openai"
base_url = "{upstream_url}/v1"
api_key = "{UPSTREAM_KEY}"
{extra}""",
        encoding="utf-8",
    )
    return path


def anthropic_provider(upstream_url: str) -> str:
    """A second [[providers]] table (for `write_config(extra=...)`): the fake upstream's
    Anthropic side, POST {base_url}/messages with x-api-key."""
    return f"""
[[providers]]
name = "{ANTHROPIC_PROVIDER}"
type = "anthropic"
base_url = "{upstream_url}/v1"
api_key = "{UPSTREAM_KEY}"
"""


def create_key(config: Path) -> str:
    """`hubproxy keys create`: the key is the last line it prints."""
    return cli(config, "keys", "create", "--user", USER).strip().splitlines()[-1]


def cli(config: Path, *args: str) -> str:
    """`hubproxy <args> --config <config>`; what it printed. RuntimeError if it failed."""
    done = subprocess.run(
        [executable(), *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=python_env(),
        preexec_fn=die_with_parent,  # safe: the bench parent has no threads
        check=False,
    )
    if done.returncode != 0:
        what = " ".join(args[:2])
        raise RuntimeError(f"hubproxy {what} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def serve_argv(config: Path) -> list[str]:
    return [executable(), "serve", "--config", str(config)]
