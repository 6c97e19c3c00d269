"""A meter webhook on loopback for the PostgreSQL meter tests: every batch it was posted, in
order, by idempotency key; `before_answer(n)` runs before the answer to the n-th batch
(1-based), to fail an exporter over while its batch is being answered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from tests.fakes.wire import serve


class Webhook:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.before_answer: Callable[[int], Awaitable[None]] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.batches.append([e["idempotency_key"] for e in body["events"]])
        if self.before_answer is not None:
            await self.before_answer(len(self.batches))
        return web.json_response({"ok": True})

    def keys(self) -> list[str]:
        return [k for b in self.batches for k in b]


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Webhook, str]]:
    """A Webhook served on a free port, and the URL to post its events to."""
    receiver = Webhook()
    app = web.Application()
    app.router.add_post("/events", receiver.handle)
    async with serve(app) as url:
        yield receiver, url + "/events"
