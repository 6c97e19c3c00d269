"""The access line: one per request, written straight from its fields as a JSON line.

It is the one line every request pays for, so when logs are JSON lines (a server's default)
it skips the structlog chain: the fields are the gateway's own (ids, numbers, names it routes
by), and only those that can carry free text (`error`, `path`) go through the redactor. On a
terminal, or before logging is set up (tests), it goes through structlog like any other line.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import orjson
import structlog

from hubproxy.telemetry.redact import scrub
from hubproxy.telemetry.sink import LineSink

_FREE_TEXT = ("error", "path")
_log = structlog.get_logger("hubproxy.access")


class Level(Protocol):
    value: int  # the level lines must reach (logs.THRESHOLD: SIGHUP may change it)


class _Direct:
    __slots__ = ("level", "second", "sink", "stamp")

    def __init__(self, sink: LineSink, level: Level) -> None:
        self.sink = sink
        self.level = level
        self.second = -1
        self.stamp = ""

    def timestamp(self) -> str:
        """ISO 8601 UTC with microseconds, as structlog's TimeStamper writes it; the part up
        to the second is made once a second."""
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.stamp}.{int((now - second) * 1_000_000):06d}Z"


_direct: _Direct | None = None


def configure(sink: LineSink | None, level: Level) -> None:
    """Write access lines straight to `sink` as JSON (None: through structlog)."""
    global _direct
    _direct = None if sink is None else _Direct(sink, level)


def write(fields: dict[str, Any], *, warning: bool = False) -> None:
    """One access line; a warning (a 5xx) is written at once, like any warning."""
    direct = _direct
    if direct is None:
        (_log.warning if warning else _log.info)("request", **fields)
        return
    level = logging.WARNING if warning else logging.INFO
    if level < direct.level.value:
        return
    for name in _FREE_TEXT:
        value = fields.get(name)
        if isinstance(value, str):
            fields[name] = scrub(value)
    line = {
        "event": "request",
        **fields,
        "level": "warning" if warning else "info",
        "timestamp": direct.timestamp(),
    }
    direct.sink.write(orjson.dumps(line), urgent=warning)
