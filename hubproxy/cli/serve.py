"""`hubproxy serve`: check the address, set up logging, serve; SIGTERM or SIGINT drains and
stops, SIGHUP reloads the config's reloadable parts."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import os
import signal
import socket
import sys

import structlog
from aiohttp import web

from hubproxy import config
from hubproxy.api.state import DRAIN, WRITER
from hubproxy.cli.common import settings_of
from hubproxy.config import ConfigError, ServerSettings, Settings
from hubproxy.tasks import Tasks

log = structlog.get_logger("hubproxy")
DEAD_DRAIN_S = 5.0  # a server whose writer died waits this long for its connections

# A server whose writer died drains this long at most: nothing in flight can be recorded.
DEAD_DRAIN_S = 5.0


def serve(args: argparse.Namespace) -> int:
    import uvloop

    from hubproxy.app import start
    from hubproxy.telemetry.setup import setup_logging

    settings = settings_of(args, secrets=True)  # registers every provider key for redaction
    host, port = settings.server.host, settings.server.port
    # Before anything starts (migrations, the writer, the first log line): a busy port is
    # one clear line and exit 1, for an operator or systemd to act on.
    problem = listen_problem(host, port, reuse_port=settings.server.reuse_port)
    if problem is not None:
        print(f"hubproxy: {problem}", file=sys.stderr)
        return 1
    sink = setup_logging(settings.log)

    async def run() -> int:
        try:
            runner, bound = await start(settings)
        except OSError as exc:  # taken between the check and now; start() cleaned up
            print(f"hubproxy: {_bind_problem(host, port, exc)}", file=sys.stderr)
            return 1
        # What startup built lives as long as the process: keep the collector off it, and
        # let it run less often (a request makes short-lived objects, rarely cycles).
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        log.info(
            "serving",
            url=f"http://{host}:{bound}",
            config=str(settings.source),
            database=settings.database.where(),
            providers=[p.name for p in settings.providers],
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reloads = Tasks()
        loop.add_signal_handler(
            signal.SIGHUP, lambda: reloads.spawn("reload", _reload(runner.app, settings))
        )
        writer = runner.app[WRITER]
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(writer.died.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        await reloads.stop()
        if writer.died.is_set():
            # Nothing can be recorded any more: exit non-zero, for systemd to restart us.
            # What is in flight cannot be recorded either, so the drain is short.
            log.critical("exiting_writer_died", error=str(writer.error))
            runner.app[DRAIN].begin()
            cleanup = asyncio.ensure_future(runner.cleanup())
            done, _ = await asyncio.wait([cleanup], timeout=DEAD_DRAIN_S)
            if not done:
                sink.close()
                os._exit(1)  # a connection held open must not keep a dead process alive
            return 1
        await drain(runner, settings.server)
        return 0

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        status = runner.run(run())
    sink.close()
    return status


async def drain(runner: web.AppRunner, server: ServerSettings) -> None:
    """SIGTERM: readiness fails at once; the listener closes after drain_grace_s; calls in
    flight have until drain_s (from now) to finish, then the rest are ended as `shutdown`
    (an error event in their stream, recorded as failed); the writer flushes at cleanup."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + server.drain_s
    gate = runner.app[DRAIN]
    gate.begin()
    log.info("draining", grace_s=server.drain_grace_s, drain_s=server.drain_s)
    await asyncio.sleep(min(server.drain_grace_s, server.drain_s))
    for site in list(runner.sites):
        await site.stop()  # new connections are refused from here
    while gate.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    cut = gate.cut()
    if cut:
        log.warning("drain_deadline", ended=cut)
    log.info("stopping")
    await runner.cleanup()


async def _reload(app: web.Application, settings: Settings) -> None:
    from hubproxy.app import reload

    assert settings.source is not None
    try:
        new = config.load(settings.source, secrets=True)
        changed = await reload(app, new)
    except ConfigError as exc:
        log.error("reload_failed", error=str(exc), kept="the running config")
        return
    # At warning: an operator must see it whatever the (possibly new) level.
    log.warning("reloaded_config", changed=changed)


def listen_problem(host: str, port: int, *, reuse_port: bool = False) -> str | None:
    """Why the server cannot listen on host:port, or None. Binds every address the host
    resolves to, the way the server will (SO_REUSEADDR, SO_REUSEPORT with `reuse_port`,
    IPv6 only on IPv6), then lets go."""
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"cannot resolve [server] host {host!r} ({exc.strerror}); set an address."
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:  # instances sharing the port: one serving it already is no problem
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                return _bind_problem(host, port, exc)
    return None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    fix = "set [server] port (or HUBPROXY_PORT)"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use (another hubproxy?); stop it or {fix}."
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port} on {host}; {fix} to 1024 or above."
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; set [server] host (or HUBPROXY_HOST)."
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}."
