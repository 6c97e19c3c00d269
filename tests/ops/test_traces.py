"""Spans over OTLP/HTTP to an in-process receiver: the request span joins the client's
traceparent and holds the upstream span (GenAI attributes) and the record's."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from hubproxy.api.state import TRACING
from tests.conftest import HubFactory
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.wire import serve

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Receiver:
    def __init__(self) -> None:
        self.spans: list[Any] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        return app

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for rs in export.resource_spans:
            for ss in rs.scope_spans:
                self.spans.extend(ss.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


def attrs(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


async def test_spans_reach_the_collector_with_the_right_parents(hub_factory: HubFactory) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as url:
        endpoint = url.rstrip("/").removesuffix("/v1")
        hub = await hub_factory(telemetry={"otlp_endpoint": endpoint})
        headers = {
            "Authorization": f"Bearer {hub.key}",
            "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01",
        }
        body = {"model": "demo/echo", "messages": [{"role": "user", "content": "trace me"}]}
        async with (
            aiohttp.ClientSession() as s,
            s.post(hub.url + "/v1/chat/completions", json=body, headers=headers) as r,
        ):
            assert r.status == 200
            await r.read()
        provider = hub.app[TRACING]._provider  # type: ignore[attr-defined]
        assert await asyncio.to_thread(provider.force_flush, 10_000)
    spans = {s.name: s for s in receiver.spans}
    request = spans["http POST"]
    assert request.trace_id.hex() == CLIENT_TRACE
    assert request.parent_span_id.hex() == CLIENT_SPAN
    upstream = spans["chat echo"]
    assert upstream.parent_span_id == request.span_id
    a = attrs(upstream)
    assert a["gen_ai.request.model"] == "echo" and a["gen_ai.provider.name"] == "demo"
    [call] = hub.calls()
    assert a["gen_ai.usage.input_tokens"] == call["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == call["completion_tokens"]
    assert a["gen_ai.response.finish_reasons"] == "stop"
    assert spans["record"].parent_span_id == request.span_id
    assert call["trace_id"] == CLIENT_TRACE


async def test_a_failed_call_s_spans_carry_the_error_and_sane_times(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as url:
        hub = await hub_factory(
            [{"name": "up", "type": "openai", "base_url": upstream[1], "api_key": "sk-up-0000"}],
            telemetry={"otlp_endpoint": url.rstrip("/")},
        )
        before = time.time_ns()
        with pytest.raises(openai.APIStatusError):
            await hub.openai().chat.completions.create(
                model="up/e500", messages=[{"role": "user", "content": "fail"}]
            )
        after = time.time_ns()
        provider = hub.app[TRACING]._provider  # type: ignore[attr-defined]
        assert await asyncio.to_thread(provider.force_flush, 10_000)
    spans = {s.name: s for s in receiver.spans}
    request, up, record = spans["http POST"], spans["chat e500"], spans["record"]
    assert len({s.span_id for s in receiver.spans}) == len(receiver.spans) == 3
    assert {s.trace_id for s in receiver.spans} == {request.trace_id}
    assert up.parent_span_id == record.parent_span_id == request.span_id
    a = attrs(up)
    assert a["gen_ai.response.finish_reasons"] == "error" and a["error.type"]
    assert a["http.response.status_code"] == 500
    assert up.status.code == 2  # STATUS_CODE_ERROR
    assert before <= request.start_time_unix_nano <= up.start_time_unix_nano
    assert up.start_time_unix_nano <= up.end_time_unix_nano <= record.start_time_unix_nano
    assert record.start_time_unix_nano <= record.end_time_unix_nano <= after
    assert up.kind == 3  # SPAN_KIND_CLIENT


async def test_sampled_out_requests_export_no_spans(hub_factory: HubFactory) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as url:
        hub = await hub_factory(telemetry={"otlp_endpoint": url.rstrip("/"), "sample_ratio": 0.0})
        await hub.openai().chat.completions.create(
            model="demo/echo", messages=[{"role": "user", "content": "unseen"}]
        )
        provider = hub.app[TRACING]._provider  # type: ignore[attr-defined]
        assert await asyncio.to_thread(provider.force_flush, 10_000)
    assert receiver.spans == []
