"""What a request carries through the gateway: its id, trace context and the call it became."""

from __future__ import annotations

from aiohttp import web

from hubproxy.gateway.record import Call

REQUEST_ID = web.RequestKey("request_id", str)
TRACE_ID = web.RequestKey("trace_id", str)
TRACE_HEADERS = web.RequestKey("trace_headers", dict[str, str])
CALL = web.RequestKey("call", Call)
