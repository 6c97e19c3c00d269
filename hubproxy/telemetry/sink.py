"""Where rendered log lines go: a bounded queue that one thread writes out, so that a slow or
blocked stdout never stalls the event loop; lines that do not fit are counted, and reported.

Lines are written in batches: everything queued within `period_s` of the first line (200 ms)
in one write, and at once when a warning or an error arrives. Only the writer thread ever
blocks on the stream. A full queue drops the new line and counts it; the next batch carries a
`log_lines_dropped` line with the count, and `dropped` keeps the total.
"""

from __future__ import annotations

import threading
import time
from typing import Any, BinaryIO

import orjson

CAPACITY = 50_000  # lines queued at most (some MB): beyond that, stdout is not keeping up


class LineSink:
    """Log lines (str or bytes, without their newline) to a binary stream, off the loop."""

    def __init__(
        self, stream: BinaryIO, *, capacity: int = CAPACITY, period_s: float = 0.2
    ) -> None:
        self._stream = stream
        self._capacity = capacity
        self._period_s = period_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits here
        self._done = threading.Condition(self._lock)  # flush() waits here
        self._lines: list[bytes] = []
        self._queued = 0  # lines ever queued
        self._written = 0  # of those, lines the writer has taken and written (or lost)
        self._urgent = False
        self._closed = False
        self._unreported = 0  # drops not yet reported in the stream
        self.dropped = 0  # lines lost in all: queue full, or the stream failed
        self._thread = threading.Thread(target=self._run, name="hubproxy-log", daemon=True)
        self._thread.start()

    def write(self, line: str | bytes, *, urgent: bool = False) -> None:
        """Queue one line; never blocks on the stream. `urgent` writes it without waiting."""
        data = (line.encode() if isinstance(line, str) else line) + b"\n"
        with self._lock:
            if self._closed:  # the writer is gone (exit): write it here, there is no loop
                self.dropped += self._write_out([data])
                return
            if len(self._lines) >= self._capacity:
                self.dropped += 1
                self._unreported += 1
                return
            self._lines.append(data)
            self._queued += 1
            if urgent or len(self._lines) == 1:
                self._urgent = self._urgent or urgent
                self._wake.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Write what is queued now and wait (at most `timeout`) until it is out."""
        with self._lock:
            target = self._queued
            self._urgent = True
            self._wake.notify()
            return self._done.wait_for(lambda: self._written >= target, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write everything queued, then stop the writer. Later lines are written directly."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)

    def logger(self, *_: Any) -> _LineLogger:
        """A structlog logger factory: loggers whose methods queue rendered lines here."""
        return _LineLogger(self)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: self._lines or self._urgent or self._closed)
                if not (self._urgent or self._closed):  # let a batch gather
                    self._wake.wait_for(lambda: self._urgent or self._closed, self._period_s)
                batch, self._lines = self._lines, []
                taken = self._queued
                unreported, self._unreported = self._unreported, 0
                self._urgent = False
                closed = self._closed
            if unreported:
                batch.append(_dropped_line(unreported))
            lost = self._write_out(batch)
            with self._lock:
                self.dropped += lost
                self._written = taken
                self._done.notify_all()
            if closed:
                return

    def _write_out(self, batch: list[bytes]) -> int:
        """Write a batch; the number of lines lost (a closed or broken stream)."""
        if not batch:
            return 0
        try:
            self._stream.write(b"".join(batch))
            self._stream.flush()
        except (OSError, ValueError):
            return len(batch)
        return 0


def _dropped_line(count: int) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = {"event": "log_lines_dropped", "count": count, "level": "warning", "timestamp": stamp}
    return orjson.dumps(line) + b"\n"


class _LineLogger:
    """What structlog calls with each rendered line: info and debug wait for the batch,
    warnings and errors go out at once."""

    __slots__ = ("_sink",)

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink

    def info(self, line: str | bytes) -> None:
        self._sink.write(line)

    debug = info

    def warning(self, line: str | bytes) -> None:
        self._sink.write(line, urgent=True)

    error = critical = exception = msg = warning
