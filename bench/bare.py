"""The baseline: a bare aiohttp pass-through to the upstream, with nothing a gateway adds.

Run as `python -m bench.bare --port P --upstream URL`. One shared ClientSession; the request
body is forwarded as is and the answer's bytes stream back chunk by chunk. No auth, no log, no
parsing: what is left is the cost of a second HTTP hop through aiohttp.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bench.server import serve

UPSTREAM = web.AppKey("upstream", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    session = request.app[SESSION]
    headers = {"Content-Type": "application/json"}
    async with session.post(request.app[UPSTREAM], data=body, headers=headers) as up:
        content_type = up.headers.get("Content-Type", "application/json")
        resp = web.StreamResponse(status=up.status, headers={"Content-Type": content_type})
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_read=120)
    ) as session:
        app[SESSION] = session
        yield


def app(upstream: str) -> web.Application:
    application = web.Application()
    application[UPSTREAM] = upstream.rstrip("/") + "/chat/completions"
    application.cleanup_ctx.append(_session)
    application.router.add_post("/v1/chat/completions", chat)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's base URL, …/v1")
    args = parser.parse_args()
    serve(app(args.upstream), args.port)


if __name__ == "__main__":
    main()
