"""A throwaway PostgreSQL cluster: Debian's `postgresql` package, run from a temporary data
directory on a free loopback port, stopped and removed at the end. The tests' fixture
(tests/pg.py) and `make bench BACKEND=postgres` both run it; neither needs pytest here.

PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user
(the package creates it) and its commands run through `runuser`. Every wait is bounded.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_START_TIMEOUT_S = 30


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


class Unavailable(RuntimeError):
    """No server could be started; the message says why."""


@contextmanager
def cluster(*, durable: bool = False) -> Iterator[Server]:
    """A running cluster, user `hubproxy` trusted on 127.0.0.1. `durable=False` (the tests)
    turns fsync off; the bench keeps PostgreSQL's defaults."""
    bindir = _bindir()
    if bindir is None:
        raise Unavailable("initdb was not found")
    as_user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="hubproxy-pg-"))
    data = root / "data"
    try:
        if as_user is not None:
            shutil.chown(root, user=as_user)
        init = _run(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "hubproxy",
             "-E", "UTF8", "--no-sync"],
            as_user,
        )  # fmt: skip
        if init.returncode != 0:
            raise Unavailable(f"initdb failed: {init.stderr.strip()[-400:]}")
        port = _free_port()
        options = f"-p {port} -k {root} -h 127.0.0.1"
        if not durable:
            options += " -F -c full_page_writes=off"
        start = _run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options,
             "-w", "-t", str(_START_TIMEOUT_S), "start"],
            as_user,
        )  # fmt: skip
        if start.returncode != 0:
            log = (
                (root / "log").read_text(errors="replace")[-400:] if (root / "log").exists() else ""
            )
            raise Unavailable(f"pg_ctl start failed: {start.stderr.strip()[-200:]} {log}")
        try:
            yield Server(host="127.0.0.1", port=port, user="hubproxy")
        finally:
            _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "10",
                 "stop"],
                as_user,
            )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], as_user: str | None) -> subprocess.CompletedProcess[str]:
    if as_user is not None:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=_START_TIMEOUT_S, check=False
    )
