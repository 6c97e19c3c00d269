"""Logs and traces, set up in one place: structlog processors and the OpenTelemetry tracer."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, BinaryIO, Protocol, TextIO

import orjson
import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hubproxy.config import LogSettings
from hubproxy.errors import scrub

PROPAGATOR = TraceContextTextMapPropagator()


# Fields whose values the gateway itself produces (ids, numbers, names it routes by): they
# cannot hold a secret, so the redactor spends no time on them.
_PLAIN = frozenset(
    {"event", "level", "timestamp", "request_id", "method", "path", "status", "duration_ms",
     "user", "model", "call", "stream", "ttfb_ms", "prompt_tokens", "completion_tokens"}
)  # fmt: skip


class Redactor:
    """A structlog processor that blanks key-shaped strings and every configured secret in
    every field that can carry free text (errors, messages, exceptions)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if len(s) >= 8)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if key not in _PLAIN and isinstance(value, str):
                event[key] = self.scrub(value)
        return event

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return scrub(text)


class LineSink:
    """Where JSON log lines go: a binary stream, written without a flush per line (a syscall
    a request is dear). Warnings and errors flush at once; everything else within the period
    of whoever calls flush() (the server, every 200 ms) and at exit."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def flush(self) -> None:
        self._stream.flush()

    def logger(self, *_: Any) -> _LineLogger:
        return _LineLogger(self._stream)


class _LineLogger:
    __slots__ = ("_stream",)

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def info(self, line: bytes) -> None:
        self._stream.write(line + b"\n")

    debug = info

    def warning(self, line: bytes) -> None:
        self._stream.write(line + b"\n")
        self._stream.flush()

    error = critical = exception = msg = warning


def setup_logging(
    settings: LogSettings, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> LineSink | None:
    """JSON lines when not on a TTY (or when asked), readable colours on a TTY. Returns the
    sink of JSON lines, which wants flush() now and then; None for the readable format."""
    out = stream or sys.stdout
    as_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        Redactor(secrets),
        structlog.processors.format_exc_info,
    ]
    sink = None
    if as_json:
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        sink = LineSink(getattr(out, "buffer", sys.stdout.buffer))
        factory: Any = sink.logger
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    return sink


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
        self.outgoing = {"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"}

    def end(self, status: int) -> None:
        pass


class Propagation:
    """W3C trace context without recording spans: join the caller's trace (or start one) and
    pass it upstream. What runs when no span exporter is configured: a few microseconds."""

    def start(self, name: str, headers: Mapping[str, str]) -> Trace:
        found = _TRACEPARENT.match(headers.get("traceparent", ""))
        trace_id = found.group(1) if found and found.group(1) != "0" * 32 else None
        return _Context(trace_id or os.urandom(16).hex())


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
