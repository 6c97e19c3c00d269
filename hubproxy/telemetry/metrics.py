"""Metrics: OpenTelemetry instruments, exported in the Prometheus text format at /metrics.

The GenAI semantic conventions where they apply (`gen_ai.client.token.usage`,
`gen_ai.server.request.duration`, `gen_ai.server.time_to_first_token`), and hubproxy's own
(`hubproxy.*`). Calls are counted by the `Metrics` addon's `settle`, which sees each finished
Call; state (writer, holds, credentials, meter) is read by observable gauges on scrape.

What is counted per call is kept in plain cells and series (telemetry/tally.py) and read by
the OTel SDK only on scrape: the SDK's synchronous instruments cost ~5 µs per add or record,
30-40 µs a call at seven, a tenth of a proxied call's CPU; now under 1 µs. Counters are
observable counters over the cells; histograms reach the Prometheus exporter through
telemetry/prometheus.py.

Label sets are bounded and cached: a model outside the catalogue (or a provider's allow-list)
is counted as `other`, and the label sets and series of a (provider, model, kind) are resolved
once.

Other policies count their refusals here: `Metrics.rate_limited(scope, limit)` (scope "key"
or "user", limit "rpm", "tpm" or "concurrency") adds to `hubproxy.rate_limit.refusals`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hubproxy.gateway.context import CallContext
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route
from hubproxy.telemetry.prometheus import Reader
from hubproxy.telemetry.tally import Cell, Counter, Histogram, Series

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
    """A (provider, model, kind)'s label sets and its series in each per-call instrument,
    resolved once: a call records into them without building or looking up attributes."""

    __slots__ = ("_duration", "_errors", "_key", "debited", "duration", "input", "output", "ttft")

    def __init__(self, provider: str, model: str, kind: str, metrics: Metrics) -> None:
        key = self._key = (provider, model, kind)
        base = {
            "gen_ai.operation.name": _OPERATION.get(kind, kind),
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        self._duration = metrics.duration
        self.duration = metrics.duration.series(key, base)
        self.ttft = metrics.ttft.series(key, base)
        self.input = metrics.tokens.series((*key, "input"), {**base, "gen_ai.token.type": "input"})
        self.output = metrics.tokens.series(
            (*key, "output"), {**base, "gen_ai.token.type": "output"}
        )
        self.debited = metrics.debited.cell(key, base)
        self._errors: dict[str, Series] = {}

    def failed(self, error_type: str) -> Series:
        """The duration series of the calls that failed with `error_type`."""
        found = self._errors.get(error_type)
        if found is None:
            base = self.duration.attrs
            found = self._errors[error_type] = self._duration.series(
                (*self._key, error_type), {**base, "error.type": error_type}
            )
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
        # Per call: histograms and counters tallied on the loop, read on scrape.
        self.tokens = Histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call",
            bounds=_TOKENS,
        )  # fmt: skip
        self.duration = Histogram(
            "gen_ai.server.request.duration", unit="s", description="Call duration",
            bounds=_SECONDS,
        )  # fmt: skip
        self.ttft = Histogram(
            "gen_ai.server.time_to_first_token", unit="s",
            description="Time to the first byte", bounds=_SECONDS,
        )  # fmt: skip
        self._batch = Histogram(
            "hubproxy.writer.batch.size", unit="{unit}", description="Writes per commit",
            bounds=_BATCH,
        )  # fmt: skip
        self._commit = Histogram(
            "hubproxy.writer.commit.duration", unit="s", description="Time to commit a batch",
            bounds=_COMMIT,
        )  # fmt: skip
        histograms = (self.tokens, self.duration, self.ttft, self._batch, self._commit)
        self._calls = Counter()
        self._requests = Counter()
        self.debited = Counter()
        self._refusals = Counter()
        self._streams = 0
        resource = Resource.create({"service.name": "hubproxy"})
        self.registry = CollectorRegistry(auto_describe=False)
        reader = Reader(self.registry, resource, "hubproxy", lambda: histograms)
        self._provider = MeterProvider(metric_readers=[reader], resource=resource)
        meter = self._provider.get_meter("hubproxy")
        meter.create_observable_counter(
            "hubproxy.calls", [self._calls.observe], unit="{call}",
            description="Model calls finished, by outcome",
        )  # fmt: skip
        meter.create_observable_counter(
            "hubproxy.http.requests", [self._requests.observe], unit="{request}",
            description="HTTP requests by status",
        )  # fmt: skip
        meter.create_observable_counter(
            "hubproxy.credits.debited", [self.debited.observe], unit="{microcredit}",
            description="Micro-credits debited",
        )  # fmt: skip
        meter.create_observable_up_down_counter(
            "hubproxy.streams.active", [self._streams_active], unit="{stream}",
            description="Streamed calls in flight",
        )  # fmt: skip
        meter.create_observable_counter(
            "hubproxy.rate_limit.refusals", [self._refusals.observe], unit="{request}",
            description="Rate-limit refusals",
        )  # fmt: skip
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
        self._statuses: dict[int, Cell] = {}
        self._success = self._calls.cell("success", {"status": "success"})
        self._failed = self._calls.cell("failed", {"status": "failed"})

    # --- the addon ------------------------------------------------------------------------

    def admit(self, ctx: CallContext, route: Route, kind: str, estimate: int) -> bool:
        """The ticket: whether the call streams (it is counted in flight until settled)."""
        stream = ctx.body.get("stream") is True
        if stream:
            self._streams += 1
        return stream

    def settle(self, ticket: Any, call: Call | None) -> None:
        if ticket:
            self._streams -= 1
        if call is None:
            return
        labels = self.labels(call.provider, call.model, call.type)
        if call.status == "success":
            self._success.value += 1
            duration = labels.duration
        else:
            self._failed.value += 1
            duration = labels.failed(_error_type(call))
        if call.duration_ms is not None:
            duration.record(call.duration_ms / 1000)
        if call.stream and call.ttfb_ms is not None:
            labels.ttft.record(call.ttfb_ms / 1000)
        usage = call.usage
        if usage is not None:
            labels.input.record(usage.prompt_tokens)
            if call.type != "embedding":
                labels.output.record(usage.completion_tokens)
        if call.credits:
            labels.debited.value += call.credits

    def headers(self, ticket: Any) -> dict[str, str]:
        return {}

    # --- what others count ----------------------------------------------------------------

    def request(self, status: int) -> None:
        """One HTTP request answered with `status` (the edge middleware calls this)."""
        cell = self._statuses.get(status)
        if cell is None:
            attrs = {"http.response.status_code": status}
            cell = self._statuses[status] = self._requests.cell(status, attrs)
        cell.value += 1

    def rate_limited(self, scope: str, limit: str) -> None:
        """A call refused by a rate limit: scope "key" or "user"; limit "rpm", "tpm" or
        "concurrency"."""
        self._refusals.cell((scope, limit), {"scope": scope, "limit": limit}).value += 1

    def committed(self, units: int, seconds: float) -> None:
        """The writer's on_commit hook."""
        self._batch.series().record(units)
        self._commit.series().record(seconds)

    def labels(self, provider: str, model: str, kind: str) -> Labels:
        """The label sets of a call; a model the catalogue does not name counts as `other`.
        Both answers are cached, and the cache starts again past _MAX_LABELS entries, so
        client-chosen names cannot grow it (the series stay: they are keyed by the labels)."""
        key = (provider, model, kind)
        found = self._labels.get(key)
        if found is None:
            if len(self._labels) >= _MAX_LABELS:
                self._labels.clear()
            named = model if self.known(provider, model) else OTHER
            found = self._labels.get((provider, named, kind)) or Labels(provider, named, kind, self)
            self._labels[key] = self._labels[(provider, named, kind)] = found
        return found

    # --- scrape ---------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self._provider.shutdown()

    def _streams_active(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._streams)]

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
