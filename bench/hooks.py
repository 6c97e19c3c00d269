"""What telemetry costs per call, in process: the metrics addon's hooks, and a traced call.

`python -m bench.hooks [--calls N]` runs a plain and a streamed call's metrics hooks (admit +
settle + request) N times each against a fresh Metrics (on, known model) and prints CPU µs
per call, and the time of one scrape. Then it times N/5 traced requests (the request span and
the call's two spans, sampled at 1.0) through the batch processor to an exporter that encodes
each batch as the OTLP/HTTP exporter does and drops it: CPU µs per request, the processor's
thread included, all but the HTTP post. It isolates what the full bench's `hubproxy-metrics`
and `hubproxy-otlp` targets measure through the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hubproxy.gateway.record import Call
from hubproxy.providers.base import Usage
from hubproxy.telemetry.metrics import Metrics
from hubproxy.telemetry.traces import Spans


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


class _Encoded(SpanExporter):
    """Encodes each batch as OTLPSpanExporter does (protobuf), then drops it."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode_spans(spans).SerializeToString()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def traced_us(calls: int) -> tuple[float, int]:
    """CPU µs per traced request (every thread), and the spans exported."""
    exporter = _Encoded()
    spans = Spans(exporter, sample_ratio=1.0)
    call = _call(False)
    headers = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    started = time.process_time()
    for n in range(calls):
        spans.start("http POST", headers).end(200, call)
        if n % 500 == 499:  # keep the processor's queue (2048) from overflowing
            spans.flush()
    spans.shutdown()  # flushes: the encoding of the last batches is counted too
    return (time.process_time() - started) / calls * 1e6, exporter.spans


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
    us, exported = traced_us(args.calls // 5)
    print(f"  traced: {us:6.2f} µs per request, OTLP-encoded ({exported} spans)")


if __name__ == "__main__":
    main()
