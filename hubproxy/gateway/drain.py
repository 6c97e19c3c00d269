"""Graceful drain: the draining flag readiness reports, and ending the calls still in flight.

`Drain.begin()` marks the process draining (readiness answers 503 from then on). Calls in
flight finish on their own; at the deadline `cut()` ends the ones still reading from their
upstream: each read raises `Shutdown`, a HubError, so the core ends the stream the way it ends
any stream that fails after its first byte (the face's error event, then the end) and records
the call as failed `shutdown`, settled once. That works through the Transport protocol: every
upstream's transport is wrapped (`wrap`), at no cost beyond a flag while not draining.
"""

from __future__ import annotations

import asyncio

from hubproxy.errors import HubError
from hubproxy.gateway.transport import Outbound, Response, Transport

SHUTDOWN = "shutdown"


class Shutdown(HubError):
    status = 503
    type = "server_error"
    default_code = "shutdown"

    def __init__(self) -> None:
        super().__init__(SHUTDOWN, headers={"Connection": "close"})


class Drain:
    """Whether the process is draining, and the upstream answers still being read."""

    def __init__(self) -> None:
        self.draining = False
        self.cutting = False
        self._open: set[_Reading] = set()

    def begin(self) -> None:
        self.draining = True

    @property
    def in_flight(self) -> int:
        """Upstream answers not yet closed: the calls still under way."""
        return len(self._open)

    def cut(self) -> int:
        """End every call still reading from its upstream with Shutdown; how many."""
        self.cutting = True
        cut = 0
        for reading in list(self._open):
            cut += reading.cut()
        return cut

    def wrap(self, transport: Transport) -> Transport:
        """`transport`, its requests and answers routed through this drain."""
        return transport if isinstance(transport, _Drained) else _Drained(transport, self)


class _Drained:
    __slots__ = ("_drain", "_inner")

    def __init__(self, inner: Transport, drain: Drain) -> None:
        self._inner = inner
        self._drain = drain

    async def send(self, request: Outbound) -> Response:
        if self._drain.cutting:
            raise Shutdown()
        resp = await self._inner.send(request)
        return _Reading(resp, self._drain)


class _Reading:
    """An upstream answer being read, which the drain can end."""

    __slots__ = ("_cut", "_drain", "_inner", "_reading", "_task", "headers", "status")

    def __init__(self, inner: Response, drain: Drain) -> None:
        self._inner = inner
        self._drain = drain
        self._task = asyncio.current_task()  # the request's handler: it reads every chunk
        self._reading = False
        self._cut = False
        self.status = inner.status
        self.headers = inner.headers
        drain._open.add(self)

    # readany and read each await the inner read themselves: a coroutine less a chunk.
    async def readany(self) -> bytes:
        self._begin()
        try:
            return await self._inner.readany()
        except asyncio.CancelledError:
            self._interrupted()
            raise
        finally:
            self._reading = False

    async def read(self) -> bytes:
        self._begin()
        try:
            return await self._inner.read()
        except asyncio.CancelledError:
            self._interrupted()
            raise
        finally:
            self._reading = False

    def _begin(self) -> None:
        if self._cut:
            raise Shutdown()
        self._reading = True

    def _interrupted(self) -> None:
        """A read was cancelled: by the drain's deadline (then Shutdown) or by anyone else."""
        task = self._task
        if self._cut and task is not None and task.uncancel() == 0:
            raise Shutdown() from None  # our own cancellation: the drain's deadline

    def close(self) -> None:
        self._drain._open.discard(self)
        self._inner.close()

    def cut(self) -> int:
        if self._cut:
            return 0
        self._cut = True
        if self._reading and self._task is not None:
            self._task.cancel()  # interrupts the read; readany turns it into Shutdown
        return 1
