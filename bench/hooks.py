"""The metrics addon's per-call cost, in process: admit + settle + request, timed.

`python -m bench.hooks [--calls N]` runs a streamed and a plain call's hooks N times each
against a fresh Metrics (on, known model) and prints µs per call, then scrapes once so the
counted values are checked. It isolates what the full bench's `hubproxy-metrics` target
measures through the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace
from typing import Any

from hubproxy.gateway.record import Call
from hubproxy.providers.base import Usage
from hubproxy.telemetry.metrics import Metrics


def _call(stream: bool) -> Call:
    call = Call.begin(
        request_id="r", user_id=1, api_key_id=1, provider="up", model="gpt-4o-mini",
        type="chat", stream=stream, trace_id=None,
    )  # fmt: skip
    call.status, call.usage = "success", Usage(prompt_tokens=9, completion_tokens=12)
    call.ttfb_ms, call.duration_ms, call.credits, call.upstream_status = 3, 12, 14, 200
    return call


def per_call_us(metrics: Metrics, calls: int, stream: bool) -> float:
    """CPU µs per call of admit + settle + request."""
    ctx: Any = SimpleNamespace(body={"stream": stream})
    route: Any = None
    call = _call(stream)
    admit, settle, request = metrics.admit, metrics.settle, metrics.request
    started = time.process_time()
    for _ in range(calls):
        settle(admit(ctx, route, "chat", 100), call)
        request(200)
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    metrics = Metrics(known=lambda provider, model: True)
    metrics.on = True
    for stream in (False, True):
        per_call_us(metrics, 2_000, stream)  # warm the label caches
        us = per_call_us(metrics, args.calls, stream)
        print(
            f"{'streamed' if stream else 'plain':>8}: {us:6.2f} µs per call (admit+settle+request)"
        )
    started = time.process_time()
    text = metrics.render()
    took = (time.process_time() - started) * 1e3
    print(f"  scrape: {took:6.2f} ms, {len(text)} bytes")
    metrics.shutdown()


if __name__ == "__main__":
    main()
