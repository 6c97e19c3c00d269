"""Logs: one redacting pipeline for hubproxy's own structlog lines and for the standard
library's logging (aiohttp, asyncio, everything else), rendered as JSON lines or for a
terminal, and written off the event loop by the sink.

Every line, whoever logs it, goes through the same processors in the same order: level and
time, then exceptions formatted into text, then the Redactor, then the renderer. Redaction
runs after exception formatting, so a traceback is scrubbed like any other field.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog
from structlog.stdlib import ProcessorFormatter

from hubproxy.config import LogSettings
from hubproxy.telemetry import access
from hubproxy.telemetry.redact import scrub
from hubproxy.telemetry.sink import LineSink

# Fields whose values the gateway itself produces (ids, numbers, names it routes by): they
# cannot hold a secret, so the redactor spends no time on them. For the standard library's
# lines "event" is the message, free text, so there it is scrubbed too.
_PLAIN = frozenset(
    {"event", "level", "timestamp", "request_id", "method", "path", "status", "duration_ms",
     "user", "model", "call", "stream", "ttfb_ms", "prompt_tokens", "completion_tokens"}
)  # fmt: skip
_PLAIN_FOREIGN = _PLAIN - {"event"}


class Redactor:
    """A structlog processor that blanks every registered secret and anything key-shaped in
    every field that can carry free text (errors, messages, formatted exceptions), nested
    lists and tables included; other objects are scrubbed as the repr they render as."""

    def __init__(self, plain: frozenset[str] = _PLAIN) -> None:
        self._plain = plain

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if key not in self._plain:
                event[key] = _scrubbed(value)
        return event


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return scrub(repr(value))


def _tail(as_json: bool, plain: frozenset[str]) -> list[Any]:
    """The processors every line ends with: exceptions as text, redaction, rendering."""
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_text)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    return [structlog.processors.format_exc_info, Redactor(plain), renderer]


def _json_text(obj: Any, **kw: Any) -> str:
    return orjson.dumps(obj, **kw).decode()


class _Threshold:
    """The level lines must reach: the first processor, so that SIGHUP can change it for
    loggers already cached (set_level)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = logging.INFO

    def __call__(self, logger: Any, method: str, event: Any) -> Any:
        if _LEVELS.get(method, logging.INFO) < self.value:
            raise structlog.DropEvent
        return event


_LEVELS = logging.getLevelNamesMapping() | {"warn": logging.WARNING, "exception": logging.ERROR}
_LEVELS = {k.lower(): v for k, v in _LEVELS.items()}
THRESHOLD = _Threshold()


def set_level(name: str) -> None:
    """Change the log level of every logger, cached ones too ([log] level on SIGHUP)."""
    level = logging.getLevelNamesMapping()[name.upper()]
    THRESHOLD.value = level
    logging.getLogger().setLevel(level)


def setup_logging(settings: LogSettings, stream: TextIO | None = None) -> LineSink:
    """JSON lines when not on a TTY (or when asked), readable colours on a TTY, for structlog
    and the standard library alike; uncaught exceptions are logged the same way. Returns the
    sink, which is closed (its lines written) at exit."""
    out = stream or sys.stdout
    as_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    THRESHOLD.value = level
    sink = LineSink(getattr(out, "buffer", sys.stdout.buffer))
    atexit.register(sink.close)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[THRESHOLD, structlog.processors.add_log_level, stamp, *_tail(as_json, _PLAIN)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=sink.logger,
        cache_logger_on_first_use=True,
    )
    formatter = ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            stamp,
        ],
        processors=[
            ProcessorFormatter.remove_processors_meta,
            *_tail(as_json, _PLAIN_FOREIGN),
        ],
    )
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.addHandler(_SinkHandler(sink, formatter))
    root.setLevel(level)
    logging.captureWarnings(True)
    access.configure(sink if as_json else None, THRESHOLD)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    return sink


class _SinkHandler(logging.Handler):
    """The standard library's records, through the structlog pipeline, into the sink."""

    def __init__(self, sink: LineSink, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._sink.write(line, urgent=record.levelno >= logging.WARNING)

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own handleError prints the record's raw message and arguments to stderr,
        # unredacted: report only where it came from.
        line = {"event": "log_record_unformattable", "logger": record.name, "level": "error"}
        self._sink.write(orjson.dumps(line), urgent=True)


_uncaught = logging.getLogger("hubproxy.uncaught")


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Python prints an uncaught exception's traceback raw to stderr: log it redacted."""
    _uncaught.critical("uncaught_exception", exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        info = (args.exc_type, args.exc_value, args.exc_traceback)
        _uncaught.error("thread_exception", exc_info=info)
