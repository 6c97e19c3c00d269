"""Traces: W3C trace context on every request, and OpenTelemetry spans when an exporter is set.

Without an exporter ([telemetry] otlp_endpoint, or [log] traces = "console") a request costs
its trace context only: the caller's traceparent joined (or a new trace), passed upstream.
With one, each request is a SERVER span (sampled at [telemetry] sample_ratio, the caller's
sampling decision followed) holding, when it made a model call, an `upstream` CLIENT span with
the GenAI attributes (model, tokens, finish) and a `record` span: from the call's end to the
release of its last bytes, which waits for the commit. They are built from the call's own
timings when the request ends, so the hot path carries no span objects.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hubproxy.gateway.record import Call
from hubproxy.ids import random_hex
from hubproxy.telemetry.callspans import CallSpans

PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


class Trace(Protocol):
    """One request's place in a distributed trace."""

    trace_id: str  # 32 hex digits, recorded with the call
    outgoing: dict[str, str]  # the traceparent header to send upstream

    def end(self, status: int, call: Call | None = None) -> None: ...


class Tracing(Protocol):
    def start(self, name: str, headers: Mapping[str, str]) -> Trace: ...

    def shutdown(self) -> None: ...


class _Context:
    __slots__ = ("outgoing", "trace_id")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.outgoing = {"traceparent": f"00-{trace_id}-{random_hex(64)}-01"}

    def end(self, status: int, call: Call | None = None) -> None:
        pass


class Propagation:
    """W3C trace context without recording spans: join the caller's trace (or start one) and
    pass it upstream. What runs when no span exporter is configured: a few microseconds."""

    def start(self, name: str, headers: Mapping[str, str]) -> Trace:
        found = _TRACEPARENT.match(headers.get("traceparent", ""))
        trace_id = found.group(1) if found and found.group(1) != "0" * 32 else None
        return _Context(trace_id or random_hex(128))

    def shutdown(self) -> None:
        pass


class _SpanTrace:
    __slots__ = ("_calls", "_span", "outgoing", "trace_id")

    def __init__(self, span: trace.Span, calls: CallSpans) -> None:
        self._span = span
        self._calls = calls
        self.trace_id = format(span.get_span_context().trace_id, "032x")
        self.outgoing: dict[str, str] = {}
        PROPAGATOR.inject(self.outgoing, context=trace.set_span_in_context(span))

    def end(self, status: int, call: Call | None = None) -> None:
        span = self._span
        span.set_attribute("http.response.status_code", status)
        if call is not None and span.is_recording():
            self._calls.emit(span.get_span_context(), call)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)
        span.end()


class Spans:
    """OpenTelemetry spans, one per request, exported through a batch processor."""

    def __init__(self, exporter: SpanExporter, sample_ratio: float = 1.0) -> None:
        provider = TracerProvider(
            resource=Resource.create({"service.name": "hubproxy"}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        )
        processor = BatchSpanProcessor(exporter)
        provider.add_span_processor(processor)
        self._provider = provider
        self._tracer = provider.get_tracer("hubproxy")
        scope = InstrumentationScope("hubproxy")
        self._calls = CallSpans(processor, provider.resource, scope, provider.id_generator)

    def start(self, name: str, headers: Mapping[str, str]) -> Trace:
        context = PROPAGATOR.extract(headers) if "traceparent" in headers else None
        span = self._tracer.start_span(name, context=context, kind=trace.SpanKind.SERVER)
        return _SpanTrace(span, self._calls)

    def flush(self, timeout_ms: int = 10_000) -> bool:
        """Export what the batch processor holds; False if it timed out."""
        return self._provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        self._provider.shutdown()


def setup_tracing(traces: str, otlp_endpoint: str = "", sample_ratio: float = 1.0) -> Tracing:
    """An OTLP/HTTP exporter to `otlp_endpoint` if set; else "console" spans as JSON on
    stderr; else ("off") trace context only."""
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces")
        return Spans(exporter, sample_ratio)
    if traces == "console":
        return Spans(ConsoleSpanExporter(out=sys.stderr), sample_ratio)
    return Propagation()
