"""Child processes: spawn on loopback, wait until healthy, and stop every one of them for sure."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Loopback only, and never through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PR_SET_PDEATHSIG = 1


class ChildError(Exception):
    """A child that would not start; the message carries the end of its stderr."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the bench dies, even by SIGKILL (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    stderr: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.stderr.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process the bench started; stop_all() ends them (TERM, then KILL) and reaps them."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._children: list[Child] = []

    def spawn(
        self, name: str, argv: Sequence[str], port: int, env: Mapping[str, str] | None = None
    ) -> Child:
        stderr = self._logs / f"{name}.stderr"
        with stderr.open("wb") as err:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # hubproxy's access log goes here: written, not kept
                stderr=err,
                env=dict(env) if env is not None else None,
                preexec_fn=die_with_parent,  # safe: the bench parent has no threads
            )
        child = Child(name, popen, port, stderr)
        self._children.append(child)
        return child

    def wait_healthy(self, child: Child, timeout_s: float = 30.0) -> None:
        """Poll GET /health until it answers 200; fail early if the child exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if child.popen.poll() is not None:
                raise ChildError(f"{child.name} died: {self.dead(child)}")
            try:
                with _OPENER.open(child.url + "/health", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise ChildError(f"{child.name} gave no /health in {timeout_s:.0f} s:\n{child.tail()}")

    def stop_all(self, grace_s: float = 10.0) -> list[str]:
        """TERM every child, wait up to grace_s in all, KILL what is left. Returns complaints
        (children that had to be killed or exited with an error) for the report."""
        dead = [c for c in self._children if c.popen.poll() is not None]
        complaints = [f"{c.name} died: {self.dead(c)}" for c in dead]
        alive = [c for c in self._children if c not in dead]
        for child in alive:
            child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in alive:
            try:
                child.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
                complaints.append(f"{child.name} (pid {child.pid}) ignored SIGTERM: killed")
                continue
            if child.popen.returncode not in (0, -signal.SIGTERM):
                complaints.append(f"{child.name} stopped badly: {self.dead(child)}")
        self._children.clear()
        return complaints

    def check_alive(self) -> None:
        """Raise ChildError if a child has exited: what is measured after that is void."""
        for child in self._children:
            if child.popen.poll() is not None:
                raise ChildError(f"{child.name} died: {self.dead(child)}")

    @staticmethod
    def dead(child: Child) -> str:
        code = child.popen.returncode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return f"{how}; the end of its stderr:\n{child.tail() or '(empty)'}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads, so far (Linux: /proc); NaN
    where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_env() -> dict[str, str]:
    """The environment for children: this one, without HUBPROXY_* overrides from the shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HUBPROXY_")}
