"""Several `hubproxy serve` processes on one PostgreSQL database: the harness of the
multi-instance tests. Each node is a real subprocess on a free loopback port with a config of
its own (its `[server] instance`, its journal under its own `[database] path`, the shared
`[database] url`); the hub is bootstrapped through the command line (users, keys, credits),
as an operator would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import to_toml
from tests.pg import Server
from tests.store.backends import fresh_pg_database
from tests.test_process import free_port

START_S = 20.0  # the longest a node may take to answer /health
CLI_S = 60.0


@dataclass
class Node:
    name: str
    port: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    """`n` nodes named node-0 … node-(n-1) on one database. `sections` are config tables
    every node shares (providers, billing, …); `server` adds to each node's [server]."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        *,
        n: int = 3,
        server: dict[str, Any] | None = None,
        **sections: Any,
    ) -> None:
        self.database_url = database_url
        self.nodes: list[Node] = []
        for i in range(n):
            home = root / f"node-{i}"
            home.mkdir(parents=True, exist_ok=True)
            port = free_port()
            raw: dict[str, Any] = {
                "server": {"port": port, "instance": f"node-{i}", **(server or {})},
                "database": {"url": database_url, "path": str(home / "hub.db")},
                "log": {"format": "json"},
                **sections,
            }
            config = home / "hubproxy.toml"
            config.write_text(to_toml(raw))
            self.nodes.append(Node(f"node-{i}", port, config, home / "stdout.log"))

    def __getitem__(self, i: int) -> Node:
        return self.nodes[i]

    # The operator's command line, against the shared database -----------------------------

    def cli(self, *args: str) -> str:
        """Run `hubproxy ARGS` with node-0's config; its stdout (it must succeed)."""
        cmd = [sys.executable, "-m", "hubproxy", *args, "--config", str(self.nodes[0].config)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=CLI_S, check=False)
        assert done.returncode == 0, f"{' '.join(args)} failed: {done.stdout}{done.stderr}"
        return done.stdout

    def new_key(self, user: str) -> tuple[int, str]:
        """A key for `user` (created when missing): its id and the key in clear."""
        out = self.cli("keys", "create", "--user", user, "--label", "multi").splitlines()
        created = next(line for line in out if line.startswith("created key "))
        return int(created.split()[2]), out[-1].strip()

    # Processes ---------------------------------------------------------------------------

    async def start(self, *which: int) -> None:
        """Start the nodes (all by default) and wait, bounded, for each to be healthy."""
        chosen = [self.nodes[i] for i in which] if which else self.nodes
        for node in chosen:
            with node.log.open("ab") as out:
                node.proc = subprocess.Popen(
                    [sys.executable, "-m", "hubproxy", "serve", "--config", str(node.config)],
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
        await asyncio.gather(*(self._healthy(node) for node in chosen))

    async def _healthy(self, node: Node) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_S
        async with aiohttp.ClientSession() as s:
            while loop.time() < deadline:
                assert node.alive, f"{node.name} exited:\n{node.log.read_text()[-3000:]}"
                try:
                    async with s.get(node.url + "/health") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{node.name} did not start:\n{node.log.read_text()[-3000:]}")

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        node = self.nodes[i]
        if node.proc is not None and node.proc.poll() is None:
            os.kill(node.proc.pid, sig)
            node.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM every node still running (SIGKILL after 30 s)."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait(timeout=10)


async def cluster_database(server: Server) -> str:
    """A fresh, migrated database for one cluster (a copy of the tests' template)."""
    return await fresh_pg_database(server)
