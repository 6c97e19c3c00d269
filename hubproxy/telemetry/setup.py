"""Logs and traces, set up in one place: setup_logging (the pipeline is in logs.py) and the
OpenTelemetry tracer."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hubproxy.ids import random_hex
from hubproxy.telemetry.logs import setup_logging

__all__ = ["Trace", "Tracing", "setup_logging", "setup_tracing"]

PROPAGATOR = TraceContextTextMapPropagator()


class Trace(Protocol):
    """One request's place in a distributed trace."""

    trace_id: str  # 32 hex digits, recorded with the call
    outgoing: dict[str, str]  # the traceparent header to send upstream

    def end(self, status: int) -> None: ...


class Tracing(Protocol):
    def start(self, name: str, headers: Mapping[str, str]) -> Trace: ...


_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


class _Context:
    __slots__ = ("outgoing", "trace_id")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.outgoing = {"traceparent": f"00-{trace_id}-{random_hex(64)}-01"}

    def end(self, status: int) -> None:
        pass


class Propagation:
    """W3C trace context without recording spans: join the caller's trace (or start one) and
    pass it upstream. What runs when no span exporter is configured: a few microseconds."""

    def start(self, name: str, headers: Mapping[str, str]) -> Trace:
        found = _TRACEPARENT.match(headers.get("traceparent", ""))
        trace_id = found.group(1) if found and found.group(1) != "0" * 32 else None
        return _Context(trace_id or random_hex(128))


class _SpanTrace:
    __slots__ = ("_span", "outgoing", "trace_id")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self.trace_id = format(span.get_span_context().trace_id, "032x")
        self.outgoing: dict[str, str] = {}
        PROPAGATOR.inject(self.outgoing, context=trace.set_span_in_context(span))

    def end(self, status: int) -> None:
        self._span.set_attribute("http.response.status_code", status)
        self._span.end()


class Spans:
    """OpenTelemetry spans, one per request, exported as configured ([log] traces)."""

    def __init__(self, exporter: SpanExporter) -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "hubproxy"}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        self._tracer = provider.get_tracer("hubproxy")

    def start(self, name: str, headers: Mapping[str, str]) -> Trace:
        context = PROPAGATOR.extract(headers) if "traceparent" in headers else None
        span = self._tracer.start_span(name, context=context, kind=trace.SpanKind.SERVER)
        return _SpanTrace(span)

    def shutdown(self) -> None:
        self._provider.shutdown()


def setup_tracing(traces: str) -> Tracing:
    """ "off": propagate trace context only; "console": export spans as JSON to stderr."""
    if traces == "console":
        return Spans(ConsoleSpanExporter(out=sys.stderr))
    return Propagation()
