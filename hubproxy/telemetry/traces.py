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
import time
from collections.abc import Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hubproxy.gateway.record import Call
from hubproxy.ids import random_hex

PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
# perf_counter → wall clock, for spans built from a call's perf_counter timings.
_EPOCH_NS = time.time_ns() - time.perf_counter_ns()


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


def _ns(perf_s: float) -> int:
    return int(perf_s * 1e9) + _EPOCH_NS


class _SpanTrace:
    __slots__ = ("_span", "_tracer", "outgoing", "trace_id")

    def __init__(self, span: trace.Span, tracer: trace.Tracer) -> None:
        self._span = span
        self._tracer = tracer
        self.trace_id = format(span.get_span_context().trace_id, "032x")
        self.outgoing: dict[str, str] = {}
        PROPAGATOR.inject(self.outgoing, context=trace.set_span_in_context(span))

    def end(self, status: int, call: Call | None = None) -> None:
        span = self._span
        span.set_attribute("http.response.status_code", status)
        if call is not None and span.is_recording():
            _call_spans(self._tracer, span, call)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)
        span.end()


def _call_spans(tracer: trace.Tracer, parent: trace.Span, call: Call) -> None:
    """The upstream call and the record's commit, under the request span."""
    ctx = trace.set_span_in_context(parent)
    start = _ns(call.started)
    end = start + int((call.duration_ms or 0) * 1e6)
    attrs: dict[str, str | int | bool] = {
        "gen_ai.operation.name": "embeddings" if call.type == "embedding" else "chat",
        "gen_ai.provider.name": call.provider,
        "gen_ai.request.model": call.model,
        "hubproxy.call.id": call.id,
        "hubproxy.call.status": call.status,
        "hubproxy.call.stream": call.stream,
        "hubproxy.call.attempts": call.attempts,
        "hubproxy.credits": call.credits,
    }
    if call.usage is not None:
        attrs["gen_ai.usage.input_tokens"] = call.usage.prompt_tokens
        attrs["gen_ai.usage.output_tokens"] = call.usage.completion_tokens
    if call.upstream_status is not None:
        attrs["http.response.status_code"] = call.upstream_status
    if call.ttfb_ms is not None:
        attrs["hubproxy.ttfb_ms"] = call.ttfb_ms
    attrs["gen_ai.response.finish_reasons"] = "stop" if call.status == "success" else "error"
    up = tracer.start_span(
        f"{attrs['gen_ai.operation.name']} {call.model}", context=ctx,
        kind=trace.SpanKind.CLIENT, attributes=attrs, start_time=start,
    )  # fmt: skip
    if call.status != "success":
        up.set_attribute("error.type", call.error or "failed")
        up.set_status(trace.StatusCode.ERROR, call.error or None)
    up.end(end_time=end)
    record = tracer.start_span(
        "record", context=ctx, start_time=end, attributes={"hubproxy.call.id": call.id}
    )
    record.end()


class Spans:
    """OpenTelemetry spans, one per request, exported through a batch processor."""

    def __init__(self, exporter: SpanExporter, sample_ratio: float = 1.0) -> None:
        provider = TracerProvider(
            resource=Resource.create({"service.name": "hubproxy"}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        self._tracer = provider.get_tracer("hubproxy")

    def start(self, name: str, headers: Mapping[str, str]) -> Trace:
        context = PROPAGATOR.extract(headers) if "traceparent" in headers else None
        span = self._tracer.start_span(name, context=context, kind=trace.SpanKind.SERVER)
        return _SpanTrace(span, self._tracer)

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
