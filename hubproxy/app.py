"""Wiring only: create_app(settings) builds the application; start() serves it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from functools import partial

import aiosqlite
from aiohttp import web

from hubproxy import tasks, ui
from hubproxy.api import (
    admin,
    admin_users,
    catalog_admin,
    health,
    middleware,
    native,
    openai,
    user,
    user_keys,
)  # fmt: skip
from hubproxy.api.catalog_admin import CATALOG
from hubproxy.api.state import (
    CREDITS,
    DRAIN,
    FOLLOWER,
    GATEWAY,
    KEYS,
    METRICS,
    RATES,
    READER,
    ROUTER,
    SETTINGS,
    TRACING,
    WRITER,
)
from hubproxy.billing import prices
from hubproxy.billing.credits import Credits, RateBook
from hubproxy.billing.meter import MeterExport
from hubproxy.config import Settings
from hubproxy.gateway.addons import Addon
from hubproxy.gateway.auth import KeyCache
from hubproxy.gateway.core import Gateway
from hubproxy.gateway.drain import Drain
from hubproxy.gateway.flight import Books
from hubproxy.gateway.routing import Router
from hubproxy.gateway.upstream import Upstreams
from hubproxy.store import backup, calls, db, ledger, retention, usage
from hubproxy.store.clock import now_ms
from hubproxy.store.migrate import migrate
from hubproxy.store.writer import Op, Writer
from hubproxy.telemetry.logs import set_level
from hubproxy.telemetry.metrics import Metrics
from hubproxy.telemetry.setup import setup_tracing

RETIRED = web.AppKey("upstreams", list[Upstreams])
CURRENT = web.AppKey("current_settings", list[Settings])  # the settings last (re)loaded
SHUTDOWN_S = 5.0  # at cleanup, what is left (the drain already ended the calls) gets this long
CRASHED = "interrupted: the server stopped while the call was in flight"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.server.max_body_bytes, middlewares=[middleware.edge]
    )
    app[SETTINGS] = settings
    app[KEYS] = KeyCache()
    app[ROUTER] = Router(settings.providers)
    tel = settings.telemetry
    app[TRACING] = setup_tracing(settings.log.traces, tel.otlp_endpoint, tel.sample_ratio)
    app[DRAIN] = Drain()
    app[METRICS] = Metrics(known=partial(_known, app))
    app[METRICS].on = settings.metrics.token is not None or bool(settings.metrics.listen)
    app[health.PROBE] = health.Probe()
    app.add_routes(health.routes)
    app[RATES] = RateBook()
    app[CREDITS] = Credits(
        settings.billing.mode,
        app[RATES],
        settings.billing.default_max_tokens,
        source=f"server-{os.getpid()}-{os.urandom(4).hex()}",
    )
    app.add_routes(openai.routes)
    app.add_routes(native.routes)
    app[middleware.ERROR_BODIES] = native.ERROR_BODIES
    app.add_routes(user.routes)
    app.add_routes(admin.routes)
    app.add_routes(user_keys.routes)
    app.add_routes(admin_users.routes)
    ui.setup(app, settings)  # the dashboard: pages, static files, session middlewares
    app.cleanup_ctx.append(_resources)
    catalog_admin.install(app)  # after _resources: it needs the reader, writer and follower
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Database, writer, caches, upstream session and background tasks: up before the first
    request, down (queued writes committed) after the last."""
    settings = app[SETTINGS]
    lock = backup.serving(settings.database)  # `hubproxy restore` refuses while held
    lock.__enter__()
    conn = db.connect(settings.database)
    migrate(conn)
    writer = Writer(conn)
    writer.start()
    app[WRITER] = writer
    # Calls left `processing` by a previous run can never finish now.
    await writer.commit(calls.sweep_op(now_ms(), CRASHED))
    await writer.commit(*_seed_rates(settings))
    reader = await db.open_reader(settings.database)
    app[READER] = reader
    credits = app[CREDITS]
    credits.load(*await ledger.snapshot(reader))
    follower = app[FOLLOWER] = tasks.Follower(reader, _follow(app, reader))
    await follower.refresh()
    upstreams = Upstreams(settings)
    await upstreams.start()
    app[RETIRED] = retired = [upstreams]  # and those a reload replaced, closed at exit
    app[CURRENT] = [settings]
    rollups = usage.Rollups()
    writer.add_source(rollups.drain)
    app[DRAIN].wrap_all(upstreams.by_name)  # SIGTERM's deadline ends the calls left
    metrics = app[METRICS]
    addons: tuple[Addon, ...] = ()
    if metrics.on:
        addons += (metrics,)
        writer.on_commit = metrics.committed
        metrics.sources.writer, metrics.sources.credits = writer, credits
        metrics.sources.pools = lambda: app[CATALOG].current.pools
    books = Books(credits, writer, rollups, addons)
    app[GATEWAY] = Gateway(app[ROUTER], upstreams.by_name, books)
    background = tasks.Tasks()
    background.every("follow-database", settings.auth.reload_interval_s, follower)
    background.every(
        "sweep-stale-calls",
        settings.database.sweep_interval_s,
        tasks.sweep(writer, settings.database.stale_after_s),
    )
    checkpointer = tasks.Checkpointer(db.connect(settings.database))
    background.every("checkpoint-wal", 1.0, checkpointer)
    if settings.database.keep_calls_days:
        pruner = retention.Retention(settings.database, writer)
        background.spawn("retention", pruner.run())
    if settings.billing.meter.url:
        background.spawn("meter-export", MeterExport(settings.billing.meter, reader, writer).run())
    try:
        yield
    finally:
        await background.stop()
        for each in retired:
            await each.close()
        await writer.close()
        await reader.close()
        await checkpointer.close()
        metrics.shutdown()
        app[TRACING].shutdown()
        lock.__exit__(None, None, None)


async def reload(app: web.Application, new: Settings) -> list[str]:
    """Apply a changed config's reloadable parts (SIGHUP): the log level and the providers.
    Calls in flight keep the upstreams they started with; the ones replaced close at exit.
    Returns what changed."""
    old, changed = app[CURRENT][0], []
    if new.log.level != old.log.level:
        set_level(new.log.level)
        changed.append("log.level")
    if new.providers != old.providers:
        gateway, upstreams = app[GATEWAY], Upstreams(new)
        await upstreams.start()
        app[DRAIN].wrap_all(upstreams.by_name)
        app[RETIRED].append(upstreams)
        gateway.router, gateway.upstreams = Router(new.providers), upstreams.by_name
        live = app[CATALOG]
        live.settings = new
        await live.load(app[READER])
        changed.append("providers")
    app[CURRENT][0] = new
    return changed


def _known(app: web.Application, provider: str, model: str) -> bool:
    """A model the metrics may name: in the catalogue or a provider's allow-list."""
    offered = app[CATALOG].current.offered(provider)
    return offered is not None and model in offered


def _follow(app: web.Application, reader: aiosqlite.Connection) -> dict[str, tasks.Handler]:
    """What to reload when another process changes keys, rates or the ledger."""
    credits = app[CREDITS]

    async def keys() -> None:
        app[KEYS].replace(await db.active_keys(reader))

    async def rates() -> None:
        app[RATES].replace(await ledger.rates(reader))

    async def balances() -> None:
        credits.follow(await ledger.tail(reader, credits.last_ledger_id, credits.source))

    return {"auth": keys, "rates": rates, "credits": balances}


def _seed_rates(settings: Settings) -> list[Op]:
    """Config rates fill in where the database has none; set ones (CLI, admin API) win."""
    ops = []
    for r in settings.billing.rates:
        rate = prices.Rate.parse(r.input, r.output, r.cached_input, r.per_image)
        ops.append(ledger.set_rate(r.provider, r.model, r.type, rate.strings(), replace=False))
    return ops


async def start(settings: Settings, *, port: int | None = None) -> tuple[web.AppRunner, int]:
    """Serve on settings.server (or `port`; 0 picks a free one). Returns the runner and the
    port. A client that disconnects cancels its handler (and so its upstream request) at once."""
    # aiohttp arms keepalive_timeout from the connection's start until a whole request head
    # has arrived (and again between requests): it is the header read timeout. The rest of a
    # body left unread (after a 408, say) is drained for at most as long before closing.
    read_s = settings.server.read_timeout_s
    runner = web.AppRunner(
        create_app(settings), handler_cancellation=True, access_log=None,
        keepalive_timeout=read_s, lingering_time=min(10.0, read_s),
        shutdown_timeout=SHUTDOWN_S,
    )  # fmt: skip
    await runner.setup()
    site = web.TCPSite(
        runner, settings.server.host, settings.server.port if port is None else port,
        backlog=1024,
    )  # fmt: skip
    try:
        await site.start()
        listen = settings.metrics.listen
        if listen:  # its own address: /metrics without a token, and the health checks
            host, _, mport = listen.rpartition(":")
            extra = web.AppRunner(health.metrics_app(runner.app), access_log=None)
            await extra.setup()
            runner.app.on_cleanup.append(lambda _: extra.cleanup())
            await web.TCPSite(extra, host.strip("[]"), int(mport)).start()
    except BaseException:
        await runner.cleanup()  # a failed bind must not leave the database and tasks up
        raise
    return runner, runner.addresses[0][1]
