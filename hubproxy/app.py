"""Wiring only: create_app(settings) builds the application; start() serves it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from functools import partial

from aiohttp import web

from hubproxy import tasks, ui
from hubproxy.api import (
    admin,
    admin_limits,
    admin_users,
    aigne_common,
    aigne_info,
    aigne_v1,
    aigne_v2,
    catalog_admin,
    health,
    legacy,
    media,
    middleware,
    native,
    openai,
    openapi,
    responses,
    user,
    user_keys,
)  # fmt: skip
from hubproxy.api.state import (
    BUDGETS,
    CATALOG,
    CREDITS,
    DRAIN,
    FOLLOWER,
    GATEWAY,
    INSTANCE,
    KEYS,
    LIMITS,
    METRICS,
    RATES,
    READER,
    SETTINGS,
    STORE,
    TRACING,
    WRITER,
)
from hubproxy.billing import prices
from hubproxy.billing.credits import Credits, RateBook
from hubproxy.billing.leases import Leases
from hubproxy.billing.meter import LedgerOutbox, MeterExport
from hubproxy.catalog import sealing, ssrf
from hubproxy.catalog.live import LiveCatalog
from hubproxy.config import MeterSettings, Settings
from hubproxy.gateway.addons import Addon
from hubproxy.gateway.auth import KeyCache
from hubproxy.gateway.core import Gateway
from hubproxy.gateway.drain import Drain
from hubproxy.gateway.flight import Books
from hubproxy.gateway.instances import Instance
from hubproxy.gateway.upstream import Upstreams
from hubproxy.limits import Budgets, KeyScopes, RateLimits
from hubproxy.limits.budgets import day_start, month_start
from hubproxy.store import calls, db, ledger, rebuild, retention, usage
from hubproxy.store.backend import Store, open_store
from hubproxy.store.clock import now_ms
from hubproxy.store.instances import Registry, SqliteRegistry
from hubproxy.store.ops import Op
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.instances import PgRegistry
from hubproxy.store.postgres.leases import LeaseStore
from hubproxy.store.postgres.meter import PgOutbox
from hubproxy.store.postgres.notify import Listener
from hubproxy.store.reader import Reader
from hubproxy.telemetry.logs import set_level
from hubproxy.telemetry.metrics import Metrics
from hubproxy.telemetry.setup import setup_tracing

CURRENT = web.AppKey("current_settings", list[Settings])  # the settings last (re)loaded
SHUTDOWN_S = 5.0  # at cleanup, what is left (the drain already ended the calls) gets this long
CRASHED = "interrupted: the server stopped while the call was in flight"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.server.max_body_bytes, middlewares=[middleware.edge]
    )
    app[SETTINGS] = settings
    app[KEYS] = KeyCache()
    app[CATALOG] = LiveCatalog(settings, sealing.master_key(settings.secrets))
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
    app[LIMITS] = RateLimits(settings.limits)
    app[BUDGETS] = Budgets(app[CREDITS].source)
    app.add_routes(openai.routes)
    app.add_routes(native.routes)
    app.add_routes(media.routes)
    app.add_routes(responses.routes)
    app.add_routes(legacy.routes)
    aigne_paths = (*aigne_v1.api.paths(), *aigne_v2.api.paths(), *aigne_info.api.paths())
    app[middleware.ERROR_BODIES] = {
        **native.ERROR_BODIES,
        **aigne_common.error_bodies(settings.aigne.payment_link, aigne_paths),
    }
    apis = (user.api, admin.api, user_keys.api, admin_users.api, admin_limits.api,
            aigne_v2.api, aigne_info.api)  # fmt: skip
    for api in apis:
        api.install(app)  # each /api route with its schema: see docs/api-routes.md
    openapi.install(app)
    ui.setup(app, settings)  # the dashboard: pages, static files, session middlewares
    catalog_admin.install(app)
    app.cleanup_ctx.append(_resources)
    aigne_v1.install(app)  # after _resources: it needs the reader and the follower
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Database, writer, caches, upstream session and background tasks: up before the first
    request, down (queued writes committed) after the last. Whatever was opened is closed,
    in reverse, also when the start fails half-way (a wrong master key, say): a thread left
    open would keep the process from exiting."""
    async with AsyncExitStack() as opened:
        await _open(app, opened)
        yield


async def _open(app: web.Application, opened: AsyncExitStack) -> None:
    settings = app[SETTINGS]
    opened.callback(app[TRACING].shutdown)
    opened.callback(app[METRICS].shutdown)
    # Pushed before the store: the leases go back after the writer's last commit, so that no
    # debit still queued can be leased by another instance meanwhile.
    leased: list[Leases] = []
    opened.push_async_callback(_give_back, leased)
    store = app[STORE] = await open_store(settings.database, opened)
    writer = app[WRITER] = store.writer
    reader = app[READER] = store.reader
    # This instance's calls left `processing` by its previous run can never finish now.
    await writer.commit(calls.fail_own_op(settings.server.instance_id, CRASHED))
    # Rollups a crash lost, recounted from the calls.
    await writer.commit(*await rebuild.ops(reader, store.dialect))
    await writer.commit(*_seed_rates(settings))
    registry = _registry(store)
    opened.push_async_callback(registry.close)  # after the tasks that use it have stopped
    instance = app[INSTANCE] = Instance(
        registry,
        settings.server.instance_id,
        dead_after_s=settings.server.dead_after_s,
        stale_after_s=settings.database.stale_after_s,
    )
    await instance.start()
    credits = app[CREDITS]
    credits.load(*await ledger.snapshot(reader, store.dialect))
    if store.url is not None and credits.enabled:  # several instances may share the balances
        book = LeaseStore(await schema.connect(store.url))
        # Held under the instance's id: the same across its restarts, never another live one's.
        credits.leases = Leases(book, instance=instance.id)
        leased.append(credits.leases)
        await credits.leases.recover()  # what this instance leased before a crash
        instance.on_dead.append(credits.leases.on_dead)  # a dead one's leases go back at once
    if store.url is not None:  # each instance enforces its share of every rate limit
        instance.on_count.append(app[LIMITS].spread)
        await instance.count()
    catalog = app[CATALOG]
    catalog.report = writer.submit  # credential state changes, for `credentials list`
    await catalog.load(reader, strict=True)  # a credential that does not open stops the start
    budgets = app[BUDGETS]
    now = now_ms()
    spend, cursor = await db.key_spend(reader, day_start(now), month_start(now), store.dialect)
    budgets.load(spend, now, cursor)
    follower = app[FOLLOWER] = tasks.Follower(reader, _follow(app, reader))
    await follower.refresh()
    upstreams = Upstreams(
        exempt_hosts=ssrf.config_hosts(p.base_url for p in settings.providers),
        allow_private=settings.security.allow_private_upstreams,
        wrap=app[DRAIN].wrap,  # SIGTERM's deadline ends the calls left
    )
    await upstreams.start()
    opened.push_async_callback(upstreams.close)
    app[CURRENT] = [settings]
    rollups = usage.Rollups(store.dialect)
    writer.add_source(rollups.drain)
    metrics = app[METRICS]
    addons: tuple[Addon, ...] = (app[LIMITS], KeyScopes(budgets))
    if metrics.on:
        addons += (metrics,)
        writer.on_commit = metrics.committed
        app[LIMITS].on_refusal = metrics.rate_limited
        metrics.sources.writer, metrics.sources.credits = writer, credits
        metrics.sources.pools = lambda: app[CATALOG].current.pools
    books = Books(credits, writer, rollups, addons=addons, instance=instance.id)
    app[GATEWAY] = Gateway(catalog, upstreams, books)
    background = tasks.Tasks()
    opened.push_async_callback(background.stop)  # first to stop: the tasks use the rest
    background.every("follow-database", settings.auth.reload_interval_s, follower)
    background.every("heartbeat", settings.server.heartbeat_s, instance.beat)
    background.every("reap-silent-instances", settings.server.heartbeat_s, instance.reap)
    background.every("sweep-stale-calls", settings.database.sweep_interval_s, instance.sweep)
    if store.url is not None:  # changes on other instances, at once (the poll stays)
        background.spawn("listen-revisions", Listener(store.url, follower.refresh_after).run)
    background.every(
        "follow-key-spend", settings.auth.reload_interval_s, _follow_spend(budgets, reader)
    )
    if settings.responses.keep_days:
        prune = tasks.prune_responses(writer, settings.responses.keep_days)
        await prune()  # then daily
        background.every("prune-responses", 86_400.0, prune)
    if store.dialect == "sqlite":  # PostgreSQL checkpoints by itself
        checkpointer = tasks.Checkpointer(db.connect(settings.database))
        opened.push_async_callback(checkpointer.close)
        background.every("checkpoint-wal", 1.0, checkpointer)
    if settings.database.keep_calls_days:
        pruner = retention.Retention(settings.database, writer, reader)
        background.spawn("retention", pruner.run())
    if credits.leases is not None:
        background.spawn("credit-leases", partial(credits.leases.run, credits.holding))
    if settings.billing.meter.url:
        background.spawn("meter-export", _export(settings.billing.meter, store))


async def reload(app: web.Application, new: Settings) -> list[str]:
    """Apply a changed config's reloadable parts (SIGHUP): the log level, the providers and
    the default limits. Calls in flight keep the catalogue snapshot they started with.
    Returns what changed."""
    old, changed = app[CURRENT][0], []
    if new.log.level != old.log.level:
        set_level(new.log.level)
        changed.append("log.level")
    if new.providers != old.providers:
        app[GATEWAY].upstreams.exempt(ssrf.config_hosts(p.base_url for p in new.providers))
        live = app[CATALOG]
        live.settings = new
        await live.load(app[READER])
        changed.append("providers")
    if new.limits != old.limits:
        app[LIMITS].defaults(new.limits)
        app[LIMITS].replace(await db.active_keys(app[READER]))
        changed.append("limits")
    app[CURRENT][0] = new
    return changed


async def _give_back(leased: list[Leases]) -> None:
    for leases in leased:
        await leases.close()


async def _export(settings: MeterSettings, store: Store) -> None:
    """The meter's export: on PostgreSQL one instance at a time (store/postgres/meter.py)."""
    if store.url is None:
        await MeterExport(settings, LedgerOutbox(store.reader, store.writer)).run()
        return
    outbox = PgOutbox(store.url)
    try:
        await MeterExport(settings, outbox).run()
    finally:  # the lock goes with the connection: another instance takes over
        await outbox.close()


def _registry(store: Store) -> Registry:
    """Where this instance's heartbeat goes: PostgreSQL's needs a connection of its own."""
    if store.url is not None:
        return PgRegistry(store.url)
    return SqliteRegistry(store.writer, store.reader)


def _known(app: web.Application, provider: str, model: str) -> bool:
    """A model the metrics may name: in the catalogue or a provider's allow-list."""
    offered = app[CATALOG].current.offered(provider)
    return offered is not None and model in offered


def _follow(app: web.Application, reader: Reader) -> dict[str, tasks.Handler]:
    """What to reload when another process changes keys, rates or the ledger."""
    credits = app[CREDITS]

    async def keys() -> None:
        rows = await db.active_keys(reader)
        app[KEYS].replace(rows)
        app[LIMITS].replace(rows)

    async def rates() -> None:
        app[RATES].replace(await ledger.rates(reader))

    async def balances() -> None:
        credits.follow(*await ledger.tail(reader, credits.cursor, credits.source))

    async def catalog() -> None:
        await app[CATALOG].reload(reader)

    return {"auth": keys, "rates": rates, "credits": balances, "catalog": catalog}


def _follow_spend(budgets: Budgets, reader: Reader) -> tasks.Handler:
    """What other servers spent on each key (their debits in the ledger), for the caps."""

    async def run() -> None:
        budgets.follow(*await db.key_debits(reader, budgets.cursor, budgets.source))

    return run


def _seed_rates(settings: Settings) -> list[Op]:
    """Config rates fill in where the database has none; set ones (CLI, admin API) win."""
    ops = []
    for r in settings.billing.rates:
        rate = prices.Rate.parse(
            r.input, r.output, r.cached_input, r.per_image,
            per_image_variants=r.per_image_variants, per_1m_chars=r.per_1m_chars,
            per_second=r.per_second, per_mb=r.per_mb,
        )  # fmt: skip
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
        backlog=1024, reuse_port=settings.server.reuse_port or None,
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
