"""The bench servers' main loop: serve an aiohttp app on uvloop on 127.0.0.1 until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import uvloop
from aiohttp import web

HOST = "127.0.0.1"


async def health(_: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def serve(app: web.Application, port: int) -> None:
    """Serve until SIGTERM or SIGINT, without an access log, then clean up."""
    app.router.add_get("/health", health)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, HOST, port, backlog=1024).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
