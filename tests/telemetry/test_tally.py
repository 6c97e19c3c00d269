"""The tally's histograms and counters, through the Prometheus exporter, render exactly what
the OTel SDK's own synchronous instruments render for the same measurements."""

from __future__ import annotations

import random

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest

from hubproxy.telemetry.prometheus import Reader
from hubproxy.telemetry.tally import Counter, Histogram

BOUNDS = (1, 4, 16, 64)
SECONDS = (0.01, 0.02, 0.04, 0.08)
RESOURCE = Resource.create({"service.name": "t"})


def measurements() -> list[tuple[str, float, dict[str, str]]]:
    """Values on, between, below and above the bounds, ints and floats, three label sets."""
    rng = random.Random(13)
    labels = [{"m": "a"}, {"m": "b", "error.type": "503"}, {"m": "c"}]
    out: list[tuple[str, float, dict[str, str]]] = []
    for value in (0, 1, 4, 16, 64, 65, 2, 1_000_000):
        out.append(("tokens", value, labels[0]))
    for value in (0.01, 0.02, 0.04, 0.08, 0.0, 0.5):
        out.append(("seconds", value, labels[1]))
    for _ in range(200):
        out.append(("tokens", rng.randint(0, 100), rng.choice(labels)))
        out.append(("seconds", rng.random() / 10, rng.choice(labels)))
        out.append(("count", rng.randint(1, 5), rng.choice(labels)))
    return out


def sdk_exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    views = [
        View(instrument_name="tokens", aggregation=ExplicitBucketHistogramAggregation(BOUNDS)),
        View(instrument_name="seconds", aggregation=ExplicitBucketHistogramAggregation(SECONDS)),
    ]
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE, views=views)
    meter = provider.get_meter("scope")
    tokens = meter.create_histogram("tokens", unit="{token}", description="Tokens")
    seconds = meter.create_histogram("seconds", unit="s", description="Seconds")
    count = meter.create_counter("count", unit="{call}", description="Calls")
    for name, value, attrs in measurements():
        if name == "count":
            count.add(int(value), attrs)
        else:
            (tokens if name == "tokens" else seconds).record(value, attrs)
    try:
        return generate_latest(registry)
    finally:
        provider.shutdown()


def tally_exposition() -> bytes:
    tokens = Histogram("tokens", unit="{token}", description="Tokens", bounds=BOUNDS)
    seconds = Histogram("seconds", unit="s", description="Seconds", bounds=SECONDS)
    count = Counter()
    registry = CollectorRegistry(auto_describe=False)
    reader = Reader(registry, RESOURCE, "scope", lambda: (tokens, seconds))
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    meter = provider.get_meter("scope")
    meter.create_observable_counter("count", [count.observe], unit="{call}", description="Calls")
    for name, value, attrs in measurements():
        key = tuple(sorted(attrs.items()))
        if name == "count":
            count.cell(key, attrs).value += int(value)
        else:
            (tokens if name == "tokens" else seconds).series(key, attrs).record(value)
    try:
        return generate_latest(registry)
    finally:
        provider.shutdown()


def test_the_tally_renders_what_the_sdk_renders() -> None:
    ours = sorted(tally_exposition().decode().splitlines())
    theirs = sorted(sdk_exposition().decode().splitlines())
    # 2 histograms x 3 label sets x (5 buckets, sum, count) + 3 counts + 6 HELP/TYPE lines
    assert len(ours) == 51
    assert ours == theirs


def test_nothing_recorded_renders_nothing() -> None:
    idle = Histogram("idle", unit="s", description="Never", bounds=SECONDS)
    idle.series(("x",), {"m": "x"})  # made, never recorded into: not exported (as the SDK)
    registry = CollectorRegistry(auto_describe=False)
    provider = MeterProvider(metric_readers=[Reader(registry, RESOURCE, "s", lambda: (idle,))])
    try:
        assert b"idle" not in generate_latest(registry)
    finally:
        provider.shutdown()
