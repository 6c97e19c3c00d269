"""What a request carries through the faces: its id, trace context and the call it became."""

from __future__ import annotations

from aiohttp import web

from hubproxy.gateway.context import CallSlot

REQUEST_ID = web.RequestKey("request_id", str)
TRACE_ID = web.RequestKey("trace_id", str)
TRACE_HEADERS = web.RequestKey("trace_headers", dict[str, str])
CALL_SLOT = web.RequestKey("call_slot", CallSlot)
STARTED = web.RequestKey("started", float)  # perf_counter when the request arrived
AUTHED = web.RequestKey("authed", float)  # perf_counter when the caller was known
