"""Health and metrics endpoints: GET /health/live, GET /health/ready, GET /metrics.

Readiness is 503, with the reasons, unless the writer's task runs and a probe write through it
commits within 5 s (so nothing queued waits longer: the writer is neither wedged nor behind,
and the database accepts writes), the process is not draining, and every enabled provider has
a usable credential. Probes are shared: a burst of readiness checks costs one write.
"""

from __future__ import annotations

import asyncio
import hmac
import time

import orjson
from aiohttp import web

from hubproxy.api.state import CATALOG, DRAIN, METRICS, READER, SETTINGS, STORE, WRITER
from hubproxy.catalog.credentials import ACTIVE
from hubproxy.errors import NotFound, Unauthorized
from hubproxy.store import ledger
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import StoreWriter
from hubproxy.telemetry.metrics import CONTENT_TYPE

PROBE_TIMEOUT_S = 5.0
PROBE_REUSE_S = 1.0  # a probe this recent answers for the next checks
_PROBE = "INSERT INTO health_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = ?"

routes = web.RouteTableDef()


class Probe:
    """A write through the writer: the proof that it runs, keeps up and can write."""

    def __init__(self) -> None:
        self._running: asyncio.Future[str | None] | None = None
        self._result: str | None = None
        self._at = -PROBE_REUSE_S

    async def check(self, writer: StoreWriter) -> str | None:
        """None if the writer committed a probe within 5 s; else why not."""
        loop = asyncio.get_running_loop()
        if self._running is None and loop.time() - self._at < PROBE_REUSE_S:
            return self._result
        if self._running is None:
            self._running = asyncio.ensure_future(self._probe(writer))
        return await asyncio.shield(self._running)

    async def _probe(self, writer: StoreWriter) -> str | None:
        try:
            at = now_ms()
            await asyncio.wait_for(writer.commit((_PROBE, (at, at))), PROBE_TIMEOUT_S)
            result = None
        except TimeoutError:
            result = f"writer: a write waited more than {PROBE_TIMEOUT_S:g} s"
        except Exception as exc:
            result = f"database: does not accept writes ({exc})"
        self._result, self._at = result, asyncio.get_running_loop().time()
        self._running = None
        return result


PROBE = web.AppKey("health_probe", Probe)


@routes.get("/health/live")
async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/health/ready")
async def ready(request: web.Request) -> web.Response:
    return await _readiness(request.app)


async def _readiness(app: web.Application) -> web.Response:
    reasons = await problems(app)
    body = {"status": "fail" if reasons else "ok", "reasons": reasons}
    return web.Response(
        status=503 if reasons else 200,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def problems(app: web.Application) -> list[str]:
    """Why the process should get no traffic now; empty when it is ready."""
    reasons = []
    drain = app.get(DRAIN)
    if drain is not None and drain.draining:
        reasons.append("draining: the server is shutting down")
    writer = app.get(WRITER)
    if writer is None or not writer.alive:
        reasons.append("writer: its task is not running")
    else:
        problem = await app[PROBE].check(writer)
        if problem is not None:
            reasons.append(problem)
    live = app.get(CATALOG)
    if live is not None:
        cat, now = live.current, time.time()
        for name, entry in sorted(cat.providers.items()):
            if not entry.enabled or entry.type == "fake":
                continue
            creds = cat.pool(name).credentials
            if not any(c.state_at(now) == ACTIVE for c in creds):
                reasons.append(f"provider {name}: no usable credential")
    return reasons


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus exposition, on the main listener for the [metrics] token only."""
    token = request.app[SETTINGS].metrics.token
    if token is None:
        raise NotFound(f"Unknown route: GET {request.path}", code="unknown_route")
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.encode(), token.reveal().encode()
    ):
        raise Unauthorized("GET /metrics takes the [metrics] token as a Bearer token.")
    return await scrape(request.app)


async def scrape(app: web.Application) -> web.Response:
    m = app[METRICS]
    reader = app.get(READER)
    if reader is not None and app[SETTINGS].billing.meter.url:
        dialect = app[STORE].dialect
        m.sources.meter_lag_s = await ledger.meter_lag_s(reader, now_ms(), dialect)
    return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE})


def metrics_app(main: web.Application) -> web.Application:
    """The [metrics] listen address's own app: /metrics (no token: the address is the
    guard) and the health checks, all reading the main app's state."""
    app = web.Application()

    async def open_scrape(request: web.Request) -> web.StreamResponse:
        return await scrape(main)

    async def readiness(request: web.Request) -> web.StreamResponse:
        return await _readiness(main)

    app.router.add_get("/metrics", open_scrape)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", readiness)
    return app
