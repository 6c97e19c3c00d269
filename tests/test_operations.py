"""Operating `hubproxy serve`: a busy port, --version (each a real process; SIGHUP and SIGTERM
are in tests/ops/test_drain.py)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from hubproxy import config
from hubproxy.app import SHUTDOWN_S
from hubproxy.cli.serve import listen_problem
from hubproxy.config import ServerSettings
from tests.conftest import to_toml
from tests.test_process import Server


def hubproxy(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubproxy", *args], capture_output=True, text=True, timeout=timeout
    )


def test_version() -> None:
    done = hubproxy("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"hubproxy {version('hubproxy')}"


def test_a_busy_port_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "hubproxy.toml"
        config.write_text(
            to_toml(
                {
                    "server": {"host": "127.0.0.1", "port": port},
                    "database": {"path": "hub.db"},
                    "providers": [{"name": "demo", "type": "fake"}],
                }
            )
        )
        done = hubproxy("serve", "--config", str(config), timeout=30)  # it must not hang
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_port_another_instance_shares_is_free_with_reuse_port() -> None:
    """[server] reuse_port: the start-up check binds the way the server will, so an instance
    already serving the port with SO_REUSEPORT is no problem, and one without it still is."""
    with socket.socket() as sibling:
        sibling.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sibling.bind(("127.0.0.1", 0))
        sibling.listen()
        port = sibling.getsockname()[1]
        assert listen_problem("127.0.0.1", port, reuse_port=True) is None
        problem = listen_problem("127.0.0.1", port)
    assert problem is not None and f"port {port} on 127.0.0.1 is in use" in problem


ROOT = Path(__file__).resolve().parents[1]


def make_dry_run(target: str) -> str:
    """The commands `make target` runs from a fresh clone (-B: as if nothing were built)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "-C", str(ROOT), target],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_install_is_the_package_alone_and_test_adds_the_tools() -> None:
    for target in ("install", "run"):
        out = make_dry_run(target)
        assert "pip install --quiet -e .\n" in out and "[test" not in out, out
    for target in ("test", "lint"):  # the README's commands set everything up themselves
        out = make_dry_run(target)
        assert "-m venv .venv" in out and "pip install --quiet -e '.[test,lint]'" in out, out
    assert make_dry_run("test").rstrip().endswith(".venv/bin/pytest")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", ["hubproxy.service", "hubproxy@.service"])
def test_systemd_waits_longer_than_the_drain(name: str) -> None:
    unit = (ROOT / "systemd" / name).read_text()
    [stop] = [line for line in unit.splitlines() if line.startswith("TimeoutStopSec=")]
    # [server] drain_s, then what cleanup may still wait for (SHUTDOWN_S), the last commit and
    # the exit: at least 10 s beyond both.
    drain = ServerSettings().drain_s + SHUTDOWN_S
    assert int(stop.removeprefix("TimeoutStopSec=")) >= drain + 10


def test_the_systemd_template_gives_each_instance_its_port_id_and_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hubproxy@<port>.service: the settings its environment makes are one instance's own."""
    unit = (ROOT / "systemd" / "hubproxy@.service").read_text()
    env = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in unit.splitlines()
        if line.startswith("Environment=")
    )
    assert env["HUBPROXY_PORT"] == "%i" and env["HUBPROXY_INSTANCE"] == "%H:%i"
    for name in ("HUBPROXY_PORT", "HUBPROXY_INSTANCE", "HUBPROXY_DB"):
        value = env[name].replace("%i", "8082").replace("%H", "host-a")
        monkeypatch.setenv(name, value)
    path = tmp_path / "hubproxy.toml"
    path.write_text(to_toml({"providers": [{"name": "demo", "type": "fake"}]}))
    settings = config.load(path)
    assert settings.server.port == 8082
    assert settings.server.instance_id == "host-a:8082"
    assert settings.database.path == Path("/var/lib/hubproxy/instance-8082.db")


def readme_blocks(section: str) -> list[str]:
    """The code blocks of a README section, in order."""
    text = (ROOT / "README.md").read_text()
    part = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"\n```[a-z]*\n(.*?)```", part, re.S)


async def test_the_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    """The Quickstart's steps after `make run`, run by bash as a reader would (against a
    server like the one `make run` starts, on a free port instead of 8080)."""
    clone, *steps = readme_blocks("Quickstart")
    assert "make run" in clone and len(steps) == 2
    server = Server(tmp_path)
    await server.start()
    try:
        work = tmp_path / "clone"
        work.mkdir()
        (work / ".venv").symlink_to(Path(sys.executable).parent.parent)  # what make run made
        script = "\n".join(steps).replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=work, capture_output=True, text=True, timeout=120,
            env={**os.environ, "HUBPROXY_CONFIG": str(server.config)},
        )  # fmt: skip
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "data: [DONE]" in done.stdout  # curl's stream
    assert done.stdout.rstrip().endswith("You said: hi")  # the Python snippet's answer


def test_the_readme_points_only_inside_the_repository() -> None:
    text = (ROOT / "README.md").read_text()
    assert "../" not in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert "docs/architecture.md" in links
    for link in links:
        if "://" not in link:
            target = (ROOT / link).resolve()
            assert target.is_file() and target.is_relative_to(ROOT), link
