"""The load generator, run in its own process: a fixed number of requests at a fixed concurrency.

Run as `python -m bench.load --url URL --model M --requests N --concurrency C [--stream]`; the
hub key, if any, comes in $BENCH_KEY. It sends --warmup requests first (discarded), then the
measured ones, and prints one JSON object: counts, elapsed time, every good request's latency,
and the commonest errors.
A request counts as an error if it fails, times out, is not 200, or is incomplete: a stream
must end with `data: [DONE]` and hold the expected number of events: one role chunk, --chunks
minus 2 content chunks, one finish chunk, the usage chunk if asked for, and [DONE]. That is the
shape of the fake upstream's OpenAI stream passed through, and of hubproxy's translation of its
Anthropic stream alike (message_start -> role chunk, a text_delta -> a content chunk,
message_delta -> finish chunk; content_block_start/stop and message_stop send nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import uvloop

DONE = b"data: [DONE]\n\n"
ROLE = b'"delta":{"role":"assistant"'
CONTENT = b'"delta":{"content":"'
FINISH = b'"finish_reason":"stop"'


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Job:
    url: str
    body: bytes
    headers: dict[str, str]
    stream: bool
    events: int  # data: events a complete stream holds, [DONE] included
    content: int  # of which content chunks: one per word of the answer
    include_usage: bool


def request_body(model: str, stream: bool, include_usage: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello! How are you today?"},
        ],
        "max_tokens": 64,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


async def one(session: aiohttp.ClientSession, job: Job) -> str | None:
    """Send one request and read all of its answer; None if it is good, else what is wrong."""
    async with session.post(job.url, data=job.body, headers=job.headers) as resp:
        if not job.stream:
            data = await resp.read()
            if resp.status != 200:
                return f"status {resp.status}: {data[:200]!r}"
            return None if b'"choices"' in data else f"reply without choices: {data[:200]!r}"
        parts = [chunk async for chunk in resp.content.iter_any()]
    data = b"".join(parts)
    if resp.status != 200:
        return f"status {resp.status}: {data[:200]!r}"
    if not data.endswith(DONE):
        return f"stream did not end with data: [DONE]: ...{data[-120:]!r}"
    events = data.count(b"data: ")
    if events != job.events:
        return f"stream had {events} data events, expected {job.events}"
    shape = (data.count(ROLE), data.count(CONTENT), data.count(FINISH))
    if shape != (1, job.content, 1):
        return f"stream had (role, content, finish) chunks {shape}, expected (1, {job.content}, 1)"
    if not job.include_usage and b'"usage"' in data:
        return "stream carries usage the client did not ask for"
    return None


async def phase(
    session: aiohttp.ClientSession, job: Job, n: int, concurrency: int, deadline: float
) -> Tally:
    """n requests by `concurrency` workers that share one bounded iterator."""
    tally = Tally()
    todo: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for _ in todo:
            if time.monotonic() > deadline:
                tally.errors["not sent: the run's deadline passed"] += 1
                continue
            started = time.perf_counter()
            try:
                problem = await one(session, job)
            except TimeoutError:
                problem = "timeout"
            except aiohttp.ClientError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                tally.errors[problem[:300]] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("BENCH_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    job = Job(
        url=args.url.rstrip("/") + "/v1/chat/completions",
        body=request_body(args.model, args.stream, args.include_usage),
        headers=headers,
        stream=args.stream,
        events=args.chunks + (1 if args.include_usage else 0) + 1,
        content=args.chunks - 2,
        include_usage=args.include_usage,
    )
    deadline = time.monotonic() + args.deadline_s
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.request_timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm = await phase(session, job, args.warmup, args.concurrency, deadline)
        started = time.perf_counter()
        tally = await phase(session, job, args.requests, args.concurrency, deadline)
        elapsed = time.perf_counter() - started
    return {
        "requests": args.requests,
        "errors": sum(tally.errors.values()),
        "warmup_errors": sum(warm.errors.values()),
        "error_samples": dict((tally.errors + warm.errors).most_common(5)),
        "elapsed_s": elapsed,
        "latencies_ms": [round(x, 4) for x in tally.latencies_ms],
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    p.add_argument("--url", required=True, help="the server's base URL, without /v1")
    p.add_argument("--model", required=True)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--include-usage", action="store_true")
    p.add_argument("--chunks", type=int, default=20, help="chunks the upstream sends per stream")
    p.add_argument("--request-timeout-s", type=float, default=30.0)
    p.add_argument("--deadline-s", type=float, default=300.0, help="stop sending after this")
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(drive(args))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
