"""The services under test, each in its own process: fake upstream, bare pass-through, hubproxy
(billing off; with a second provider of type anthropic), hubproxy-billing (billing on),
hubproxy-metrics (metrics on), hubproxy-otlp (every span exported to the local OTLP receiver)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import billing, hub, otlp, postgres
from bench.procs import Child, Children, free_port, python_env
from tests.pgcluster import Server


@dataclass
class Stack:
    """The running services by name ("upstream", "bare", "otlp", "hubproxy", ...), and each
    hubproxy's hub key and config file by service name."""

    services: dict[str, Child]
    keys: dict[str, str]
    configs: dict[str, Path]
    folder: Path
    children: Children
    # A service of several processes (hubproxy-pg3): all their pids, for its CPU per request.
    pids: dict[str, list[int]] = field(default_factory=dict)
    # Run after each target's round, before the next is measured (--backend postgres: the
    # databases' vacuum and checkpoint, so that no target pays for another's writes).
    settle: Callable[[], None] = lambda: None


@contextmanager
def running(
    chunks: int, delay_ms: float, complaints: list[str], backend: str = "sqlite"
) -> Iterator[Stack]:
    """Start everything, wait until each answers /health; on the way out, stop every child and
    remove the temporary folder (config, database, stderr logs), whatever happened. Children
    that died early or stopped badly are added to `complaints`. `backend="postgres"`: the
    billed hubproxy on SQLite and on a PostgreSQL cluster started here (bench/postgres.py)."""
    folder = Path(tempfile.mkdtemp(prefix="hubproxy-bench-"))
    children = Children(folder)
    stack = Stack({}, {}, {}, folder, children)
    try:
        env = python_env()
        py = sys.executable
        port = free_port()
        upstream = children.spawn(
            "upstream",
            [py, "-m", "bench.upstream", "--port", str(port), "--chunks", str(chunks),
             "--delay-ms", str(delay_ms)],
            port, env,
        )  # fmt: skip
        port = free_port()
        bare = children.spawn(
            "bare",
            [py, "-m", "bench.bare", "--port", str(port), "--upstream", upstream.url + "/v1"],
            port,
            env,
        )
        stack.services = {"upstream": upstream, "bare": bare}
        if backend == "postgres":
            with postgres.server() as pg:
                _billed_hub(stack, upstream.url, env)
                urls = [
                    _pg_hub(stack, pg, service, n, upstream.url, env)
                    for service, n in ((postgres.ONE, 1), (postgres.THREE, postgres.INSTANCES))
                ]
                stack.settle = lambda: postgres.settle(urls)
                _wait(stack)
                yield stack
                complaints.extend(children.stop_all())  # before the cluster goes
            return
        port = free_port()
        sink = children.spawn(
            otlp.SERVICE, [py, "-m", "bench.otlp", "--port", str(port)], port, env
        )
        stack.services[otlp.SERVICE] = sink
        hubs = {
            "hubproxy": ("", hub.anthropic_provider(upstream.url)),
            # Issue #13: the same hubproxy with its metrics on ([metrics] token: /metrics
            # served, every call counted), OTLP off.
            "hubproxy-metrics": (
                "-metrics",
                hub.anthropic_provider(upstream.url) + '\n[metrics]\ntoken = "bench"\n',
            ),
            # Issue #13: the same hubproxy exporting every request's spans (sample ratio 1.0)
            # by OTLP/HTTP to the local receiver (bench/otlp.py); metrics off.
            "hubproxy-otlp": (
                "-otlp",
                hub.anthropic_provider(upstream.url) + otlp.telemetry(sink.url),
            ),
        }
        _billed_hub(stack, upstream.url, env)
        for service, (name, extra) in hubs.items():
            port = free_port()
            config = hub.write_config(folder, port, upstream.url, extra=extra, name=name)
            stack.keys[service] = hub.create_key(config)
            stack.configs[service] = config
            stack.services[service] = children.spawn(service, hub.serve_argv(config), port, env)
        _wait(stack)
        yield stack
    finally:
        complaints.extend(children.stop_all())
        shutil.rmtree(folder, ignore_errors=True)


def _billed_hub(stack: Stack, upstream_url: str, env: dict[str, str]) -> None:
    """hubproxy-billing: [billing] mode = "credits", credits granted before it starts."""
    port = free_port()
    config = hub.write_config(
        stack.folder, port, upstream_url, extra=billing.EXTRA, name="-billing"
    )
    stack.keys[billing.SERVICE] = hub.create_key(config)
    billing.grant(config)  # before serve: it reads the balances once, at start
    stack.configs[billing.SERVICE] = config
    stack.services[billing.SERVICE] = stack.children.spawn(
        billing.SERVICE, hub.serve_argv(config), port, env
    )


def _pg_hub(
    stack: Stack, pg: Server, service: str, n: int, upstream_url: str, env: dict[str, str]
) -> str:
    """`n` billed instances on a database of their own, on one port; the service is the
    first, its CPU the sum of all."""
    url = postgres.create_database(pg, service.replace("-", "_"))
    port = free_port()
    configs = postgres.configs(stack.folder, port, upstream_url, url, service, n)
    hub.cli(configs[0], "migrate")
    stack.keys[service] = hub.create_key(configs[0])
    billing.grant(configs[0])
    stack.configs[service] = configs[0]
    members = [
        stack.children.spawn(f"{service}-{i}", hub.serve_argv(c), port, env)
        for i, c in enumerate(configs)
    ]
    stack.services[service] = members[0]
    stack.pids[service] = [m.pid for m in members]
    if n > 1:
        postgres.wait_instances(url, service, n)
    return url


def _wait(stack: Stack) -> None:
    for child in stack.services.values():
        stack.children.wait_healthy(child)
