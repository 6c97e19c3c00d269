"""The services under test, each in its own process: fake upstream, bare pass-through, hubproxy
(billing off; with a second provider of type anthropic), hubproxy-billing (billing on),
hubproxy-metrics (metrics on), hubproxy-otlp (every span exported to the local OTLP receiver)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import billing, hub, otlp
from bench.procs import Child, Children, free_port, python_env


@dataclass
class Stack:
    """The running services by name ("upstream", "bare", "otlp", "hubproxy", ...), and each
    hubproxy's hub key and config file by service name."""

    services: dict[str, Child]
    keys: dict[str, str]
    configs: dict[str, Path]
    folder: Path
    children: Children


@contextmanager
def running(chunks: int, delay_ms: float, complaints: list[str]) -> Iterator[Stack]:
    """Start everything, wait until each answers /health; on the way out, stop every child and
    remove the temporary folder (config, database, stderr logs), whatever happened. Children
    that died early or stopped badly are added to `complaints`."""
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
        port = free_port()
        sink = children.spawn(
            otlp.SERVICE, [py, "-m", "bench.otlp", "--port", str(port)], port, env
        )
        stack.services = {"upstream": upstream, "bare": bare, otlp.SERVICE: sink}
        hubs = {
            "hubproxy": ("", hub.anthropic_provider(upstream.url)),
            billing.SERVICE: ("-billing", billing.EXTRA),
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
        for service, (name, extra) in hubs.items():
            port = free_port()
            config = hub.write_config(folder, port, upstream.url, extra=extra, name=name)
            stack.keys[service] = hub.create_key(config)
            if service == billing.SERVICE:
                billing.grant(config)  # before serve: it reads the balances once, at start
            stack.configs[service] = config
            stack.services[service] = children.spawn(service, hub.serve_argv(config), port, env)
        for child in stack.services.values():
            children.wait_healthy(child)
        yield stack
    finally:
        complaints.extend(children.stop_all())
        shutil.rmtree(folder, ignore_errors=True)
