"""Measuring a scenario: its targets in interleaved rounds, each round one bench.load process.

Rounds (direct, bare, hubproxy, then hubproxy, bare, direct, …) spread any drift of the
machine over every target alike; a target's result merges its rounds: RPS is all its requests
over all its measured time, the percentiles come from every request's latency.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench import plan
from bench.plan import Scenario, Target
from bench.procs import cpu_seconds, die_with_parent, python_env
from bench.stack import Stack


@dataclass(frozen=True)
class Sizes:
    """How much to send: the scenario's request count times `scale` (--quick, --scale)."""

    scale: float = 1.0
    chunks: int = 20
    deadline_s: float = 120.0  # per round; what is not sent by then counts as errors

    def per_round(self, scenario: Scenario) -> int:
        return max(50, round(scenario.requests * self.scale / scenario.rounds))


@dataclass
class Result:
    """One target's numbers in one scenario, merged over its rounds."""

    scenario: str
    target: str
    chunks: int = 0  # chunks per streamed answer, as the client receives them; 0: not streamed
    requests: int = 0
    sent: int = 0  # requests sent, warm-ups included
    errors: int = 0
    warmup_errors: int = 0  # a warm-up that fails fails the run too
    elapsed_s: float = 0.0
    round_rps: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # CPU time of the answering service over the rounds, warm-ups included
    cpu_requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error_samples: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def spread(self) -> float:
        """(max - min) / mean of the rounds' RPS: how much the machine moved meanwhile."""
        if len(self.round_rps) < 2 or not self.rps:
            return math.nan
        return (max(self.round_rps) - min(self.round_rps)) / self.rps

    @property
    def cpu_us(self) -> float:
        """The answering service's CPU time per request, in µs: for direct the upstream's, for
        a proxy its own (its upstream's not included). Steadier than RPS on a busy machine."""
        return 1e6 * self.cpu_s / self.cpu_requests if self.cpu_requests else math.nan

    def percentile(self, q: float) -> float:
        """Nearest rank over every good request of every round."""
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def add(self, out: dict[str, Any]) -> None:
        self.requests += out["requests"]
        self.errors += out["errors"]
        self.warmup_errors += out["warmup_errors"]
        self.sent += out.get("sent", 0)
        self.error_samples.update(out["error_samples"])
        if out["elapsed_s"] > 0:
            self.elapsed_s += out["elapsed_s"]
            self.round_rps.append(out["requests"] / out["elapsed_s"])
        self.latencies_ms += out["latencies_ms"]
        self.cpu_s += out.get("cpu_s", 0.0)
        self.cpu_requests += out.get("cpu_requests", 0)


def scenario_results(
    stack: Stack,
    scenario: Scenario,
    sizes: Sizes,
    progress: Callable[[int, list[Result]], None],
    into: list[Result],
) -> None:
    """Every round of the scenario, its results added to `into` as they come (so a run cut
    short still shows what it measured); progress(round, results) after each round."""
    chunks = sizes.chunks if scenario.stream else 0
    results = [Result(scenario.name, name, chunks) for name in scenario.targets]
    into += results
    for n in range(scenario.rounds):
        # Every other round backwards (a b c, c b a, ...): a drift of the machine in time, or
        # what one target leaves behind for the next, weighs on no target more than another.
        for result in results if n % 2 == 0 else results[::-1]:
            result.add(one_round(stack, scenario, plan.target(result.target), sizes))
            stack.children.check_alive()
            stack.settle()
        progress(n + 1, results)


def one_round(stack: Stack, scenario: Scenario, target: Target, sizes: Sizes) -> dict[str, Any]:
    service = stack.services[target.service]
    n = sizes.per_round(scenario)
    argv = [
        sys.executable, "-m", "bench.load",
        "--url", service.url,
        "--model", target.model,
        "--requests", str(n),
        "--warmup", str(scenario.warmup),
        "--concurrency", str(scenario.concurrency),
        "--chunks", str(sizes.chunks),
        "--deadline-s", str(sizes.deadline_s),
    ]  # fmt: skip
    if scenario.stream:
        argv.append("--stream")
    if scenario.include_usage:
        argv.append("--include-usage")
    env = python_env()
    if target.hub_key:
        env["BENCH_KEY"] = stack.keys[target.service]
    pids = stack.pids.get(target.service, [service.pid])
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            env=env,
            timeout=sizes.deadline_s + 60,
            preexec_fn=die_with_parent,  # safe: the bench parent has no threads
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _failed(n, "load generator timed out", b"")
    if done.returncode != 0:
        return _failed(n, f"load generator exited {done.returncode}", done.stderr)
    try:
        out: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError):
        return _failed(n, "load generator printed no result", done.stderr)
    out["sent"] = n + scenario.warmup
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    if not math.isnan(cpu):
        out["cpu_s"], out["cpu_requests"] = cpu, n + scenario.warmup
    return out


def _failed(n: int, why: str, stderr: bytes) -> dict[str, Any]:
    tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
    message = why + (": " + " | ".join(tail) if tail else "")
    return {"requests": n, "errors": n, "warmup_errors": 0, "error_samples": {message: n},
            "elapsed_s": 0.0, "latencies_ms": []}  # fmt: skip
