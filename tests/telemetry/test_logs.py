"""Logs: the standard library's lines (aiohttp, asyncio) go through the same redacting
pipeline as hubproxy's own; tracebacks are scrubbed; a slow stdout never blocks the loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import orjson

from hubproxy.telemetry.sink import LineSink
from tests.test_process import Server

CANARY = "canary-provider-key-0987654321"  # registered by value: no key shape


async def test_malformed_header_with_a_hub_key_is_logged_redacted(tmp_path: Path) -> None:
    server = Server(tmp_path)
    try:
        await server.start()
        for header in (
            f"Authorization Bearer {server.key}",  # no colon: an invalid header token
            f"Authorization: Bearer {server.key}\x00",  # NUL in the value
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{header}\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
            writer.close()
    finally:
        server.stop()
    text = server.log.read_text()
    lines = server.lines()  # every line is JSON: aiohttp's went through the pipeline too
    errors = [x for x in lines if x.get("logger") == "aiohttp.server"]
    assert len(errors) == 2 and all(x["level"] == "error" for x in errors)
    assert all("[redacted]" in x["exception"] for x in errors)
    assert server.key not in text and server.key[3:] not in text


SCRIPT = f"""
import logging, threading
import structlog
from hubproxy.config import LogSettings, Secret
from hubproxy.telemetry.setup import setup_logging

Secret({CANARY!r})  # what config loading does with a provider key
sink = setup_logging(LogSettings(format="json"))

def fail(key):
    raise RuntimeError("upstream refused " + key + " and sk-shaped-1234567890abcdef")

try:
    fail({CANARY!r})
except RuntimeError:
    structlog.get_logger("hubproxy").exception("native", detail=["x " + {CANARY!r}])
    logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=True)
logging.getLogger("aiohttp.server").warning("raw %s", {CANARY!r})
logging.getLogger("aiohttp.server").debug("below the level: not written")
thread = threading.Thread(target=fail, args=({CANARY!r},))
thread.start(); thread.join()
fail({CANARY!r})  # uncaught: Python would print the traceback raw
"""


def test_tracebacks_are_formatted_then_redacted(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, timeout=60, cwd=tmp_path
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert CANARY.encode() not in out and b"sk-shaped" not in out, out.decode()
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    events = {x["event"]: x for x in lines}
    assert set(events) == {
        "native", "Task exception was never retrieved", "raw [redacted]", "thread_exception",
        "uncaught_exception",
    }, lines  # fmt: skip
    assert events["native"]["detail"] == ["x [redacted]"]
    for name in ("native", "Task exception was never retrieved", "thread_exception",
                 "uncaught_exception"):  # fmt: skip
        exception = events[name]["exception"]
        assert exception.startswith("Traceback") and "upstream refused [redacted]" in exception
    assert events["uncaught_exception"]["level"] == "critical"
    assert events["Task exception was never retrieved"]["logger"] == "asyncio"


class Blocked:
    """A stdout that does not take anything until released (a full pipe, a stuck terminal)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        assert self.release.wait(10), "never released"
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass


def test_a_blocked_stdout_never_blocks_the_logger_and_drops_are_counted() -> None:
    stream = Blocked()
    sink = LineSink(stream, capacity=5)  # type: ignore[arg-type]
    logger = sink.logger()
    done = threading.Event()

    def log_many() -> None:
        for i in range(20):
            (logger.warning if i % 2 else logger.info)(f'{{"event": "line {i}"}}')
        done.set()

    threading.Thread(target=log_many, daemon=True).start()
    try:
        assert done.wait(2), "a log call blocked on the stream"
    finally:
        stream.release.set()
    assert sink.flush(10)
    lines = [orjson.loads(x) for x in bytes(stream.data).splitlines()]
    written = [x["event"] for x in lines if x["event"].startswith("line ")]
    [report] = [x for x in lines if x["event"] == "log_lines_dropped"]
    assert len(written) + report["count"] == 20 and report["count"] >= 14
    assert sink.dropped == report["count"]
    sink.close()
    logger.info('{"event": "after close"}')  # written directly: there is no writer any more
    assert bytes(stream.data).endswith(b'{"event": "after close"}\n')


def test_lines_are_batched_and_flushed_at_close() -> None:
    stream = Blocked()
    stream.release.set()
    writes: list[int] = []
    write = stream.write

    def counted(data: bytes) -> int:
        writes.append(data.count(b"\n"))
        return write(data)

    stream.write = counted  # type: ignore[method-assign]
    sink = LineSink(stream, period_s=5)  # type: ignore[arg-type]
    for i in range(100):
        sink.write(f"info {i}")
    sink.close()  # does not wait out the period: writes what is queued, then stops
    assert writes == [100] and bytes(stream.data).count(b"info ") == 100
