"""What the gateway core costs per call, in process: no HTTP, no upstream, no client.

`python -m bench.core [--calls N] [--rounds R]` builds hubproxy as `serve` does
(create_app: writer, journal, credits, rate limits, key scopes, billing in credits mode with a
rate for the model), replaces the provider's transport by one that answers from memory with
bench.upstream's own bytes, and runs N calls of `Gateway.chat` for each shape: a whole
answer, a stream read one event at a time, and a stream read as bench.upstream's answer
arrives (its first event, then the rest in one read). It prints CPU µs per call (process
time, the best of R rounds; each round ends with the writer's commit of its calls) and the
wall time of the writer's commits in it (more than their CPU on a busy machine). What the
core's own code costs, measured through the noise of a shared machine: the number to decide
a change of the core on, before the full bench.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import tempfile
import time
from collections.abc import Mapping
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiohttp import web

from bench import billing, hub, upstream
from hubproxy.api.state import GATEWAY, KEYS
from hubproxy.app import create_app
from hubproxy.config.load import load
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.transport import Outbound

BODY: dict[str, Any] = {
    "model": f"{hub.PROVIDER}/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello"}],
    "max_tokens": 64,
}


class _Answer:
    """An upstream answer already in memory, read as the reads say."""

    def __init__(self, reads: list[bytes]) -> None:
        self.status = 200
        self.headers: Mapping[str, str] = {"Content-Type": "text/event-stream"}
        self._reads = list(reads)

    async def readany(self) -> bytes:
        return self._reads.pop(0) if self._reads else b""

    async def read(self) -> bytes:
        out, self._reads = b"".join(self._reads), []
        return out

    def close(self) -> None:
        pass


class _Memory:
    """A Transport that answers every request from memory."""

    def __init__(self, whole: bytes, stream: list[bytes]) -> None:
        self.whole, self.stream = whole, stream

    async def send(self, request: Outbound) -> _Answer:
        return _Answer(self.stream if b'"stream":true' in request.body else [self.whole])


async def _measure(calls: int, rounds: int, chunks: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hubproxy-core-"))
    try:
        config = hub.write_config(folder, 1, "http://127.0.0.1:9", extra=billing.EXTRA)
        key = hub.create_key(config)
        billing.grant(config)
        app = create_app(load(config))
        runner = web.AppRunner(app)
        await runner.setup()
        gc.freeze()  # as `hubproxy serve` does after its start (cli/serve.py)
        gc.set_threshold(50_000, 20, 20)
        try:
            await _shapes(app, key, calls, rounds, chunks)
        finally:
            await runner.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _shapes(app: web.Application, key: str, calls: int, rounds: int, chunks: int) -> None:
    gateway = app[GATEWAY]
    # As bench.upstream answers hubproxy, which always asks a stream for its usage.
    asked = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    events = [*upstream.chunks(asked, chunks), b"data: [DONE]\n\n"]
    whole = orjson.dumps(upstream.completion(BODY, chunks))
    target = gateway.upstreams.get(gateway.catalog.current.providers[hub.PROVIDER])
    principal = app[KEYS].authenticate({"Authorization": f"Bearer {key}"})
    writer = gateway.books.writer
    committing = [0.0]

    def on_commit(_units: int, seconds: float) -> None:
        committing[0] += seconds

    writer.on_commit = on_commit
    shapes = (
        ("whole answer", False, events),
        ("stream, an event a read", True, events),
        ("stream, as it arrives", True, [events[0], b"".join(events[1:])]),
    )
    for name, stream, reads in shapes:
        target.transport = _Memory(whole, reads)
        ctx = CallContext(request_id="r", principal=principal, body={**BODY, "stream": stream})

        async def one(ctx: CallContext = ctx) -> None:
            async with aclosing(gateway.chat(ctx)) as parts:
                async for _ in parts:
                    pass

        for _ in range(min(calls, 300)):  # warm up
            await one()
        await writer.flush()
        best, commit = float("inf"), 0.0
        for _ in range(rounds):
            committing[0] = 0.0
            started = time.process_time()
            for i in range(calls):
                await one()
                if i % 32 == 31:
                    await asyncio.sleep(0)  # let the writer run, as between requests
            await writer.flush()
            took = (time.process_time() - started) / calls * 1e6
            if took < best:
                best, commit = took, committing[0] / calls * 1e6
        print(f"{name:24}  {best:7.1f} CPU µs/call  (the writer's commits, wall: {commit:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="calls per round and shape")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per shape; the best counts")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per streamed answer")
    args = parser.parse_args()
    uvloop.run(_measure(args.calls, args.rounds, args.chunks))


if __name__ == "__main__":
    main()
