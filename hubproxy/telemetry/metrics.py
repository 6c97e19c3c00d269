"""Metrics: OpenTelemetry instruments, exported in the Prometheus text format at /metrics.

The GenAI semantic conventions where they apply (`gen_ai.client.token.usage`,
`gen_ai.server.request.duration`, `gen_ai.server.time_to_first_token`), and hubproxy's own
(`hubproxy.*`). Calls are counted by the `Metrics` addon's `settle`, which sees each finished
Call; state (writer, holds, credentials, meter) is read by observable gauges on scrape.

Label sets are bounded and cached: a model outside the catalogue (or a provider's allow-list)
is counted as `other`, and the attribute dicts of a (provider, model, kind) are built once.

Other policies count their refusals here: `Metrics.rate_limited(scope, limit)` (scope "key"
or "user", limit "rpm", "tpm" or "concurrency") adds to `hubproxy.rate_limit.refusals`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hubproxy.gateway.context import CallContext
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"
_MAX_LABELS = 4096  # label sets cached; past it the cache starts again (catalogue churn)
# The GenAI conventions' advised buckets: seconds, and tokens.
_SECONDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_COMMIT = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_OPERATION = {"chat": "chat", "embedding": "embeddings"}

Known = Callable[[str, str], bool]  # is provider/model in the catalogue or an allow-list?


class Labels:
    """The attribute dicts of one (provider, model, kind), built once."""

    __slots__ = ("base", "error", "input", "output")

    def __init__(self, provider: str, model: str, kind: str) -> None:
        self.base = {
            "gen_ai.operation.name": _OPERATION.get(kind, kind),
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        self.input = {**self.base, "gen_ai.token.type": "input"}
        self.output = {**self.base, "gen_ai.token.type": "output"}
        self.error: dict[str, dict[str, str]] = {}

    def failed(self, error_type: str) -> dict[str, str]:
        found = self.error.get(error_type)
        if found is None:
            found = self.error[error_type] = {**self.base, "error.type": error_type}
        return found


class Sources:
    """What the observable gauges read on scrape; set once the resources exist."""

    writer: Any = None  # store.writer.Writer
    credits: Any = None  # billing.credits.Credits
    pools: Callable[[], Mapping[str, Any]] | None = None  # provider → CredentialPool
    meter_lag_s: float | None = None  # set by the scrape before it collects


class Metrics:
    """The instruments, the Prometheus registry they are read through, and the call addon."""

    def __init__(self, known: Known | None = None) -> None:
        self.known: Known = known or (lambda provider, model: False)
        self.on = False  # served ([metrics] token or listen): calls are counted
        self.sources = Sources()
        self.registry = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(disable_target_info=True, registry=self.registry)
        views = [
            View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(bounds))
            for name, bounds in (
                ("gen_ai.server.request.duration", _SECONDS),
                ("gen_ai.server.time_to_first_token", _SECONDS),
                ("gen_ai.client.token.usage", _TOKENS),
                ("hubproxy.writer.batch.size", _BATCH),
                ("hubproxy.writer.commit.duration", _COMMIT),
            )
        ]
        self._provider = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": "hubproxy"}),
            views=views,
        )
        meter = self._provider.get_meter("hubproxy")
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call"
        )
        self._duration = meter.create_histogram(
            "gen_ai.server.request.duration", unit="s", description="Call duration"
        )
        self._ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", unit="s", description="Time to the first byte"
        )
        self._calls = meter.create_counter(
            "hubproxy.calls", unit="{call}", description="Model calls finished, by outcome"
        )
        self._requests = meter.create_counter(
            "hubproxy.http.requests", unit="{request}", description="HTTP requests by status"
        )
        self._debited = meter.create_counter(
            "hubproxy.credits.debited", unit="{microcredit}", description="Micro-credits debited"
        )
        self._streams = meter.create_up_down_counter(
            "hubproxy.streams.active", unit="{stream}", description="Streamed calls in flight"
        )
        self._refusals = meter.create_counter(
            "hubproxy.rate_limit.refusals", unit="{request}", description="Rate-limit refusals"
        )
        self._batch = meter.create_histogram(
            "hubproxy.writer.batch.size", unit="{unit}", description="Writes per commit"
        )
        self._commit = meter.create_histogram(
            "hubproxy.writer.commit.duration", unit="s", description="Time to commit a batch"
        )
        meter.create_observable_gauge(
            "hubproxy.writer.queue.depth", [self._queue_depth], unit="{unit}",
            description="Units of writes queued, not yet committed",
        )  # fmt: skip
        meter.create_observable_gauge(
            "hubproxy.holds.outstanding", [self._holds], unit="{hold}",
            description="Credit holds of calls in flight",
        )  # fmt: skip
        meter.create_observable_gauge(
            "hubproxy.holds.outstanding.amount", [self._held], unit="{microcredit}",
            description="Micro-credits held by calls in flight",
        )  # fmt: skip
        meter.create_observable_gauge(
            "hubproxy.credentials", [self._credentials], unit="{credential}",
            description="Provider credentials by state",
        )  # fmt: skip
        meter.create_observable_gauge(
            "hubproxy.meter.export.lag", [self._meter_lag], unit="s",
            description="Age of the oldest debit the meter webhook has not taken",
        )  # fmt: skip
        self._labels: dict[tuple[str, str, str], Labels] = {}
        self._statuses: dict[int, dict[str, int]] = {}
        self._outcomes = {
            s: {"status": s} for s in ("success", "failed")
        }  # hubproxy.calls' own label sets

    # --- the addon ------------------------------------------------------------------------

    def admit(self, ctx: CallContext, route: Route, kind: str, estimate: int) -> bool:
        """The ticket: whether the call streams (it is counted in flight until settled)."""
        stream = ctx.body.get("stream") is True
        if stream:
            self._streams.add(1)
        return stream

    def settle(self, ticket: Any, call: Call | None) -> None:
        if ticket:
            self._streams.add(-1)
        if call is None:
            return
        labels = self.labels(call.provider, call.model, call.type)
        failed = call.status != "success"
        attrs = labels.failed(_error_type(call)) if failed else labels.base
        self._calls.add(1, self._outcomes["failed" if failed else "success"])
        if call.duration_ms is not None:
            self._duration.record(call.duration_ms / 1000, attrs)
        if call.stream and call.ttfb_ms is not None:
            self._ttft.record(call.ttfb_ms / 1000, labels.base)
        usage = call.usage
        if usage is not None:
            self._tokens.record(usage.prompt_tokens, labels.input)
            if call.type != "embedding":
                self._tokens.record(usage.completion_tokens, labels.output)
        if call.credits:
            self._debited.add(call.credits, labels.base)

    def headers(self, ticket: Any) -> dict[str, str]:
        return {}

    # --- what others count ----------------------------------------------------------------

    def request(self, status: int) -> None:
        """One HTTP request answered with `status` (the edge middleware calls this)."""
        attrs = self._statuses.get(status)
        if attrs is None:
            attrs = self._statuses[status] = {"http.response.status_code": status}
        self._requests.add(1, attrs)

    def rate_limited(self, scope: str, limit: str) -> None:
        """A call refused by a rate limit: scope "key" or "user"; limit "rpm", "tpm" or
        "concurrency"."""
        self._refusals.add(1, {"scope": scope, "limit": limit})

    def committed(self, units: int, seconds: float) -> None:
        """The writer's on_commit hook."""
        self._batch.record(units)
        self._commit.record(seconds)

    def labels(self, provider: str, model: str, kind: str) -> Labels:
        """The label sets of a call; a model the catalogue does not name counts as `other`.
        Both answers are cached, and the cache starts again past _MAX_LABELS entries, so
        client-chosen names cannot grow it."""
        key = (provider, model, kind)
        found = self._labels.get(key)
        if found is None:
            if len(self._labels) >= _MAX_LABELS:
                self._labels.clear()
            named = model if self.known(provider, model) else OTHER
            found = self._labels.get((provider, named, kind)) or Labels(provider, named, kind)
            self._labels[key] = self._labels[(provider, named, kind)] = found
        return found

    # --- scrape ---------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self._provider.shutdown()

    def _queue_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        writer = self.sources.writer
        return [] if writer is None else [Observation(writer.depth)]

    def _holds(self, options: CallbackOptions) -> Iterable[Observation]:
        credits = self.sources.credits
        return [] if credits is None else [Observation(sum(credits.holds.values()))]

    def _held(self, options: CallbackOptions) -> Iterable[Observation]:
        credits = self.sources.credits
        return [] if credits is None else [Observation(sum(credits.held.values()))]

    def _credentials(self, options: CallbackOptions) -> Iterable[Observation]:
        pools = self.sources.pools
        if pools is None:
            return []
        now = time.time()
        out = []
        for provider, pool in pools().items():
            counts = {"active": 0, "cooling": 0, "disabled": 0}
            for cred in pool.credentials:
                state = cred.state_at(now)
                counts[state] = counts.get(state, 0) + 1
            for state, n in counts.items():
                out.append(Observation(n, {"gen_ai.provider.name": provider, "state": state}))
        return out

    def _meter_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        lag = self.sources.meter_lag_s
        return [] if lag is None else [Observation(lag)]


def _error_type(call: Call) -> str:
    """error.type: the upstream's status if it answered with an error, else a short cause."""
    status = call.upstream_status
    if status is not None and status >= 400:
        return str(status)
    error = call.error or ""
    if error == "client disconnected":
        return "client_disconnected"
    if error == "shutdown" or error.startswith("shutdown"):
        return "shutdown"
    if "timed out" in error or "idle timeout" in error:
        return "timeout"
    return "_OTHER"
