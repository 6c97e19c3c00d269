"""Wiring only: create_app(settings) builds the application; start() serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from hubproxy import calls, tasks
from hubproxy.api import middleware, openai
from hubproxy.api.state import GATEWAY, KEY_RELOADER, KEYS, READER, ROUTER, SETTINGS, TRACER
from hubproxy.auth import KeyCache
from hubproxy.config import Settings
from hubproxy.proxy import Gateway
from hubproxy.routing import Router
from hubproxy.store import db
from hubproxy.store.migrate import migrate
from hubproxy.store.writer import Writer
from hubproxy.telemetry import setup_tracing
from hubproxy.upstream import Upstream

CRASHED = "interrupted: the server stopped while the call was in flight"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.server.max_body_bytes, middlewares=[middleware.edge]
    )
    app[SETTINGS] = settings
    app[KEYS] = KeyCache()
    app[ROUTER] = Router(settings.providers)
    app[TRACER] = setup_tracing()
    app.add_routes(openai.routes)
    app.cleanup_ctx.append(_resources)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Database, writer, upstream session and background tasks: up before the first request,
    down (queued writes committed) after the last."""
    settings = app[SETTINGS]
    conn = db.connect(settings.database)
    migrate(conn)
    writer = Writer(conn)
    writer.start()
    # Calls left `processing` by a previous run can never finish now.
    await writer.commit(calls.sweep_op(calls.now_ms(), CRASHED))
    reader = await db.open_reader(settings.database)
    app[READER] = reader
    reload_keys = app[KEY_RELOADER] = tasks.KeyReloader(reader, app[KEYS])
    await reload_keys()
    upstream = Upstream(settings)
    await upstream.start()
    app[GATEWAY] = Gateway(app[ROUTER], upstream, writer)
    background = tasks.Tasks()
    background.every("reload-keys", settings.auth.reload_interval_s, reload_keys)
    background.every(
        "sweep-stale-calls",
        settings.database.sweep_interval_s,
        tasks.sweep(writer, settings.database.stale_after_s),
    )
    try:
        yield
    finally:
        await background.stop()
        await upstream.close()
        await writer.close()
        await reader.close()


async def start(settings: Settings, *, port: int | None = None) -> tuple[web.AppRunner, int]:
    """Serve on settings.server (or `port`; 0 picks a free one). Returns the runner and the
    port. A client that disconnects cancels its handler (and so its upstream request) at once."""
    runner = web.AppRunner(create_app(settings), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.server.host, settings.server.port if port is None else port,
        backlog=1024,
    )  # fmt: skip
    await site.start()
    return runner, runner.addresses[0][1]
