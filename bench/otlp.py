"""A local OTLP/HTTP trace receiver for the bench's `hubproxy-otlp`: accepts and drops spans.

Run as `python -m bench.otlp --port P`. POST /v1/traces takes an ExportTraceServiceRequest
(protobuf), counts its spans and answers an empty ExportTraceServiceResponse, as a collector
does; GET /stats answers {"exports", "spans", "bytes"} so that the bench can check that the
spans of every request arrived (a batch processor that drops spans would cost less than one
that exports them all, and the ratio would flatter hubproxy).
"""

from __future__ import annotations

import argparse
import json
import time
from urllib.request import urlopen

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.server import serve

SERVICE = "otlp"  # its name among the stack's services
SPANS_PER_REQUEST = 3  # hubproxy's request span, its upstream span and its record span
COUNTS = web.AppKey("counts", dict)
_ANSWER = ExportTraceServiceResponse().SerializeToString()


async def traces(request: web.Request) -> web.Response:
    body = await request.read()
    export = ExportTraceServiceRequest.FromString(body)
    counts = request.app[COUNTS]
    counts["exports"] += 1
    counts["bytes"] += len(body)
    counts["spans"] += sum(len(ss.spans) for rs in export.resource_spans for ss in rs.scope_spans)
    return web.Response(body=_ANSWER, content_type="application/x-protobuf")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def app() -> web.Application:
    application = web.Application(client_max_size=64 * 1024 * 1024)
    application[COUNTS] = {"exports": 0, "spans": 0, "bytes": 0}
    application.router.add_post("/v1/traces", traces)
    application.router.add_get("/stats", stats)
    return application


def telemetry(url: str) -> str:
    """The [telemetry] table (for hub.write_config(extra=...)) exporting every span to `url`."""
    return f'\n[telemetry]\notlp_endpoint = "{url}"\nsample_ratio = 1.0\n'


def check(url: str, served: int) -> tuple[str, str | None]:
    """After the load of `served` requests (warm-ups included): a line for the report, and a
    problem if fewer spans arrived than the requests made (waits up to ~12 s for the batch
    processor's last exports)."""
    expected = served * SPANS_PER_REQUEST
    got: dict[str, int] = {}
    for _ in range(25):
        with urlopen(url + "/stats", timeout=5) as r:
            got = json.loads(r.read())
        if got["spans"] >= expected:
            break
        time.sleep(0.5)
    line = (
        f"OTLP at sample ratio 1.0: {got['spans']:,} spans received for {served:,} requests "
        f"(warm-ups included; {expected:,} expected) in {got['exports']:,} exports, "
        f"{got['bytes'] / max(got['spans'], 1):.0f} bytes a span"
    )
    if got["spans"] < expected:
        return line, f"the OTLP receiver got {got['spans']:,} spans, expected {expected:,}"
    return line, None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    serve(app(), parser.parse_args().port)


if __name__ == "__main__":
    main()
