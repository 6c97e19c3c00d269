"""What the bench measures, in one place: the targets it drives, the scenarios, the goals.

To add a case: a Target if there is a new thing to send requests to (it names the service in
bench/stack.py that answers), a Scenario for a new traffic shape, a Goal for a new promise, a
Figure for a cost that is reported without a promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Target:
    """Something requests are sent to."""

    name: str
    service: str  # the process that answers: a key of Stack.services
    model: str
    hub_key: bool = False  # send `Authorization: Bearer <hub key>`


@dataclass(frozen=True, slots=True)
class Scenario:
    """A traffic shape, run against each of its targets in turn."""

    name: str
    stream: bool
    concurrency: int
    requests: int  # measured requests per target in a full run (times --scale)
    rounds: int = 3  # the requests are split in rounds, interleaved across the targets
    warmup: int = 200  # per round: sent and discarded first, on the same connections
    include_usage: bool = False  # the client sends stream_options.include_usage
    targets: tuple[str, ...] = ("direct", "bare", "hubproxy")
    backend: Literal["sqlite", "postgres"] = "sqlite"  # the run it belongs to: --backend


@dataclass(frozen=True, slots=True)
class Goal:
    """A promise the project makes, as the ratio it is stated in.

    throughput:    rps(target) / rps(baseline) >= limit
    added_latency: (p50(target) - p50(reference)) / (p50(baseline) - p50(reference)) <= limit
    chunk_cost:    (cpu_us(target) / chunks) / (cpu_us(baseline) / chunks) <= limit, where
                   cpu_us is the answering process's CPU µs per request and chunks the
                   chat.completion.chunk events per answer the client receives (both targets
                   of a streamed scenario receive the same number)
    """

    kind: Literal["throughput", "added_latency", "chunk_cost"]
    scenario: str
    limit: float
    target: str = "hubproxy"
    baseline: str = "bare"
    reference: str = "direct"


@dataclass(frozen=True, slots=True)
class Figure:
    """A cost reported without a limit: target against baseline in one scenario, as the
    throughput ratio and the ratio of the answering processes' CPU µs per request."""

    scenario: str
    target: str
    baseline: str = "hubproxy"


TARGETS = (
    Target("direct", "upstream", "gpt-4o-mini"),
    Target("bare", "bare", "gpt-4o-mini"),
    Target("hubproxy", "hubproxy", "up/gpt-4o-mini", hub_key=True),
    # The same hubproxy process and upstream; the upstream answers in Anthropic's Messages
    # format, which hubproxy translates into OpenAI chunks: what translating costs.
    Target("hubproxy-anthropic", "hubproxy", "anth/claude-x", hub_key=True),
    # A second hubproxy, [billing] mode = "credits", with a rate for the model and credits.
    Target("hubproxy-billing", "hubproxy-billing", "up/gpt-4o-mini", hub_key=True),
    # Issue #12 (--backend postgres): hubproxy-billing's config on one PostgreSQL database,
    # one instance; then three instances sharing one port (SO_REUSEPORT) on another database.
    Target("hubproxy-pg", "hubproxy-pg", "up/gpt-4o-mini", hub_key=True),
    Target("hubproxy-pg3", "hubproxy-pg3", "up/gpt-4o-mini", hub_key=True),
    # A third, with its metrics on (issue #13): what counting every call costs.
    Target("hubproxy-metrics", "hubproxy-metrics", "up/gpt-4o-mini", hub_key=True),
    # A fourth, exporting every request's spans by OTLP (sample ratio 1.0) to bench/otlp.py.
    Target("hubproxy-otlp", "hubproxy-otlp", "up/gpt-4o-mini", hub_key=True),
)

SCENARIOS = (
    Scenario(
        "plain c32",
        stream=False,
        concurrency=32,
        requests=30_000,
        rounds=4,  # even, so that rounds run backwards as often as forwards (bench/measure.py)
        targets=(
            "direct",
            "bare",
            "hubproxy",
            "hubproxy-billing",
            "hubproxy-metrics",
            "hubproxy-otlp",
        ),
    ),
    Scenario(
        "stream c32",
        stream=True,
        concurrency=32,
        requests=15_000,
        rounds=4,
        targets=(
            "direct",
            "bare",
            "hubproxy",
            "hubproxy-anthropic",
            "hubproxy-billing",
            "hubproxy-metrics",
            "hubproxy-otlp",
        ),
    ),
    Scenario("plain c1", stream=False, concurrency=1, requests=8_000),
    Scenario("stream c1", stream=True, concurrency=1, requests=6_000),
    # --backend postgres (issue #12): billing on everywhere, SQLite against PostgreSQL.
    *(
        Scenario(
            f"{kind} c32 pg",
            stream=kind == "stream",
            concurrency=32,
            requests=15_000 if kind == "stream" else 30_000,
            rounds=4,
            targets=("bare", "hubproxy-billing", "hubproxy-pg", "hubproxy-pg3"),
            backend="postgres",
        )
        for kind in ("plain", "stream")
    ),
)

GOALS = (
    Goal("throughput", "plain c32", 0.8),
    Goal("throughput", "stream c32", 0.8),
    Goal("added_latency", "plain c1", 1.3),
    Goal("added_latency", "stream c1", 1.3),
    # Issue #3: translating Anthropic's stream costs at most 1.5x the pass-through per chunk.
    Goal("chunk_cost", "stream c32", 1.5, target="hubproxy-anthropic", baseline="hubproxy"),
    # Issue #4: billing costs at most 10% of throughput against billing off.
    Goal("throughput", "plain c32", 0.9, target="hubproxy-billing", baseline="hubproxy"),
    Goal("throughput", "stream c32", 0.9, target="hubproxy-billing", baseline="hubproxy"),
    # Issue #13: metrics on cost at most 5% of throughput against metrics off.
    Goal("throughput", "plain c32", 0.95, target="hubproxy-metrics", baseline="hubproxy"),
    Goal("throughput", "stream c32", 0.95, target="hubproxy-metrics", baseline="hubproxy"),
    # Issue #12: one instance on PostgreSQL keeps 90% of the SQLite backend's throughput.
    Goal("throughput", "plain c32 pg", 0.9, target="hubproxy-pg", baseline="hubproxy-billing"),
    Goal("throughput", "stream c32 pg", 0.9, target="hubproxy-pg", baseline="hubproxy-billing"),
)


FIGURES = (
    # Issue #13: metrics on against off (its goals above), in CPU as well as throughput.
    Figure("plain c32", "hubproxy-metrics"),
    Figure("stream c32", "hubproxy-metrics"),
    # Issue #13: what exporting every span by OTLP costs, against OTLP off.
    Figure("plain c32", "hubproxy-otlp"),
    Figure("stream c32", "hubproxy-otlp"),
    # Issue #12: three instances behind one port against one, on one PostgreSQL (CPU: the
    # three processes' sum per request).
    Figure("plain c32 pg", "hubproxy-pg3", baseline="hubproxy-pg"),
    Figure("stream c32 pg", "hubproxy-pg3", baseline="hubproxy-pg"),
)


def target(name: str) -> Target:
    for t in TARGETS:
        if t.name == name:
            return t
    raise KeyError(f"no target {name!r}; known: {', '.join(t.name for t in TARGETS)}")
