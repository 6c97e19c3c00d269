"""The Prometheus exporter's reader, with the histograms tallied outside the SDK
(telemetry/tally.py) added to each collection, so that one exporter renders every metric."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry

from hubproxy.telemetry.tally import Histogram


class Reader(PrometheusMetricReader):
    """PrometheusMetricReader whose collections also hold `histograms`' points, under the
    meter's own scope (so their labels are the SDK metrics' labels)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        resource: Resource,
        scope: str,
        histograms: Callable[[], Iterable[Histogram]],
    ) -> None:
        super().__init__(disable_target_info=True, registry=registry)
        self._resource = resource
        self._scope = InstrumentationScope(scope)
        self._histograms = histograms

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        now = time.time_ns()
        found = [m for h in self._histograms() if (m := h.metric(now)) is not None]
        if found:
            ours = ResourceMetrics(
                self._resource, [ScopeMetrics(self._scope, found, schema_url="")], schema_url=""
            )
            metrics_data = MetricsData([*metrics_data.resource_metrics, ours])
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)
