"""Sending one request upstream: the one-method Transport, over HTTP or inside the process.

A Transport takes a finished request (URL, body, headers with the credential in them) and
returns the answer with its body unread. It knows nothing of providers, keys or failover
(gateway/upstream.py does that): compare httpx's `AsyncBaseTransport.handle_async_request`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from hubproxy.errors import GatewayTimeout, HubError, UpstreamError


@dataclass(slots=True)  # built per request: a frozen init costs ~1 µs more
class Outbound:
    """A request ready to go: its headers carry the credential and the format's own."""

    url: str
    body: bytes
    headers: Mapping[str, str]


class Response(Protocol):
    """An upstream answer whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]

    async def readany(self) -> bytes:
        """The next bytes as they arrive; b"" at the end."""
        ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


class Transport(Protocol):
    async def send(self, request: Outbound) -> Response:
        """POST `request`. Raises HubError when no answer came; a HubError with
        `before_send` set means nothing reached the upstream (it could not be connected)."""
        ...


class NotSent(UpstreamError):
    """The upstream could not be reached: the request never left (nothing to pay for)."""


class HttpResponse:
    """A ClientResponse with aiohttp's errors turned into HubErrors."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def readany(self) -> bytes:
        try:
            return await self._resp.content.readany()
        except BaseException as exc:
            raise translate(exc) from exc

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except BaseException as exc:
            raise translate(exc) from exc

    def close(self) -> None:
        """Drop the connection: an unfinished upstream request is cancelled by it."""
        self._resp.close()


# Sent with every request, in the request's own headers: aiohttp then adds no User-Agent of
# its own, and takes its fast path (a session with default or skipped headers merges them
# into every request's).
USER_AGENT = "hubproxy/0.1"


class HttpTransport:
    """aiohttp, over the process's one ClientSession, with one provider's timeouts. Redirects
    are never followed: an upstream that redirects is answered as it stands."""

    __slots__ = ("_session", "_timeout")

    def __init__(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> None:
        self._session = session
        self._timeout = timeout

    async def send(self, request: Outbound) -> Response:
        try:
            resp = await self._session.post(
                request.url,
                data=request.body,
                headers={"User-Agent": USER_AGENT, **request.headers},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except BaseException as exc:
            raise translate(exc) from exc
        return HttpResponse(resp)


def timeout(connect_s: float, idle_s: float) -> aiohttp.ClientTimeout:
    # No total: a stream may run as long as it keeps sending. sock_read is the idle limit,
    # before the headers and between chunks alike.
    return aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=idle_s)


def translate(exc: BaseException) -> BaseException:
    """aiohttp's failures as the client should see them; anything else unchanged."""
    if isinstance(exc, HubError | asyncio.CancelledError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return NotSent(
            "Connecting to the upstream provider timed out.", code="upstream_timeout", status=504
        )
    if isinstance(exc, TimeoutError):
        return GatewayTimeout("The upstream provider stopped sending (idle timeout).")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return NotSent("Could not connect to the upstream provider.", code="upstream_unreachable")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(
            "The upstream provider closed the connection before the answer was complete.",
            code="upstream_disconnected",
        )
    return exc
