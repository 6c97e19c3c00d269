"""Logs and traces, set up in one place: structlog processors and the OpenTelemetry tracer."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hubproxy.config import LogSettings
from hubproxy.errors import scrub

PROPAGATOR = TraceContextTextMapPropagator()


class Redactor:
    """A structlog processor that blanks key-shaped strings and every configured secret."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = tuple(s for s in secrets if len(s) >= 8)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.scrub(value)
        return event

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return scrub(text)


def setup_logging(
    settings: LogSettings, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """JSON lines when not on a TTY (or when asked), readable colours on a TTY."""
    out = stream or sys.stdout
    as_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        Redactor(secrets),
        structlog.processors.format_exc_info,
    ]
    if as_json:
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        factory: Any = structlog.BytesLoggerFactory(getattr(out, "buffer", None))
    else:
        processors.append(structlog.dev.ConsoleRenderer())
        factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def setup_tracing(service: str = "hubproxy") -> trace.Tracer:
    """A real tracer, so every call has a trace id (joined to the caller's via traceparent and
    passed on upstream). Spans are not exported unless an exporter is added to the provider."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    return provider.get_tracer("hubproxy")
