"""Sampling a running hubproxy with py-spy while the load runs (optional: --profile DIR)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import die_with_parent


def py_spy() -> str | None:
    """py-spy from the venv or PATH. It is not a project dependency: `pip install py-spy`."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextmanager
def sampling(pid: int, out: Path, rate: int = 200) -> Iterator[None]:
    """py-spy record, raw (collapsed stacks), for as long as the block runs. Only samples of
    the thread that holds the GIL count (--gil): for an asyncio server that is the resource
    that runs out, and waits (epoll, queues, the GIL itself) do not pollute the profile."""
    exe = py_spy()
    if exe is None:
        raise FileNotFoundError("--profile needs py-spy: .venv/bin/pip install py-spy")
    argv = [exe, "record", "--pid", str(pid), "--output", str(out), "--format", "raw",
            "--rate", str(rate), "--gil", "--full-filenames"]  # fmt: skip
    spy = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,  # safe: the bench parent has no threads
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if not out.exists():
            print(f"py-spy wrote no profile: {err.decode(errors='replace').strip()}")
