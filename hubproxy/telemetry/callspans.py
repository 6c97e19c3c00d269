"""A model call's spans under its request span: the upstream call (GenAI attributes) and the
record's commit, built finished from the call's own timings.

They are made as the SDK's ReadableSpan, the object `Span.end()` hands to the span processor,
and given to the processor directly: built after the fact, with a parent that is already
sampled, they need none of `Tracer.start_span`'s work (a sampler, a live span with locked,
re-validated attributes, then a copy of it at `end`). That halves what a traced call costs
before export (bench/hooks.py --traces).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from hubproxy.gateway.record import Call

_OK = Status(StatusCode.UNSET)


class CallSpans:
    """Builds a call's two spans and hands them to `processor`, as finished spans of `scope`."""

    __slots__ = ("_ids", "_processor", "_resource", "_scope")

    def __init__(
        self,
        processor: SpanProcessor,
        resource: Resource,
        scope: InstrumentationScope,
        ids: IdGenerator,
    ) -> None:
        self._processor, self._resource, self._scope, self._ids = processor, resource, scope, ids

    def emit(self, parent: SpanContext, call: Call) -> None:
        """The upstream call and the record's commit, children of `parent` (the request)."""
        # The call's perf_counter timings, placed on the wall clock as of now (an offset taken
        # once at start would drift from the request span's wall clock as NTP slews it). Its
        # duration is whole milliseconds, rounded: the end is kept from passing now.
        now = time.time_ns()
        start = now - int((time.perf_counter() - call.started) * 1e9)
        end = min(start + (call.duration_ms or 0) * 1_000_000, now)
        operation = "embeddings" if call.type == "embedding" else "chat"
        attrs: dict[str, str | int | bool] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": call.provider,
            "gen_ai.request.model": call.model,
            "hubproxy.call.id": call.id,
            "hubproxy.call.status": call.status,
            "hubproxy.call.stream": call.stream,
            "hubproxy.call.attempts": call.attempts,
            "hubproxy.credits": call.credits,
        }
        if call.usage is not None:
            attrs["gen_ai.usage.input_tokens"] = call.usage.prompt_tokens
            attrs["gen_ai.usage.output_tokens"] = call.usage.completion_tokens
        if call.upstream_status is not None:
            attrs["http.response.status_code"] = call.upstream_status
        if call.ttfb_ms is not None:
            attrs["hubproxy.ttfb_ms"] = call.ttfb_ms
        ok = call.status == "success"
        attrs["gen_ai.response.finish_reasons"] = "stop" if ok else "error"
        status = _OK
        if not ok:
            attrs["error.type"] = call.error or "failed"
            status = Status(StatusCode.ERROR, call.error or None)
        self._span(parent, f"{operation} {call.model}", attrs, start, end, SpanKind.CLIENT, status)
        record = {"hubproxy.call.id": call.id}
        self._span(parent, "record", record, end, now, SpanKind.INTERNAL, _OK)

    def _span(
        self,
        parent: SpanContext,
        name: str,
        attrs: Mapping[str, str | int | bool],
        start: int,
        end: int,
        kind: SpanKind,
        status: Status,
    ) -> None:
        context = SpanContext(
            parent.trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=parent.trace_flags,
            trace_state=parent.trace_state,
        )
        self._processor.on_end(
            ReadableSpan(
                name=name,
                context=context,
                parent=parent,
                resource=self._resource,
                attributes=attrs,
                kind=kind,
                status=status,
                start_time=start,
                end_time=end,
                instrumentation_scope=self._scope,
            )
        )
