"""Talking to upstreams: the one ClientSession, key choice, failover before the first byte."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Protocol

import aiohttp

from hubproxy.config import ProviderSettings, Settings
from hubproxy.errors import GatewayTimeout, HubError, UpstreamError
from hubproxy.gateway.demo import FakeProvider
from hubproxy.providers import make
from hubproxy.providers.base import Provider, UpstreamRequest

# A key that the upstream refused or rate-limited rests this long before it is tried again.
_REST_S = {401: 300.0, 403: 300.0, 429: 30.0}
_ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class Response(Protocol):
    """An upstream answer whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]

    async def readany(self) -> bytes:
        """The next bytes as they arrive; b"" at the end."""
        ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


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
            raise _translate(exc) from exc

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except BaseException as exc:
            raise _translate(exc) from exc

    def close(self) -> None:
        """Drop the connection: an unfinished upstream request is cancelled by it."""
        self._resp.close()


class LocalResponse:
    """The demo provider's answer, produced in the process."""

    __slots__ = ("_chunks", "headers", "status")

    def __init__(self, status: int, chunks: list[bytes]) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {}
        self._chunks = chunks

    async def readany(self) -> bytes:
        if not self._chunks:
            return b""
        await asyncio.sleep(0)  # like a socket: let the loop breathe between chunks
        return self._chunks.pop(0)

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    def close(self) -> None:
        self._chunks = []


class KeyRing:
    """A provider's keys, taken in turn, skipping those resting after a refusal."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = keys
        self._resting = [0.0] * len(keys)
        self._next = 0

    def __len__(self) -> int:
        return len(self._keys)

    def order(self) -> list[int]:
        """Indexes to try: the next in turn first, keys still resting last."""
        n = len(self._keys)
        if n < 2:
            return [0] if n else []
        start, self._next = self._next, (self._next + 1) % n
        turn = [(start + i) % n for i in range(n)]
        now = time.monotonic()
        if all(until <= now for until in self._resting):
            return turn
        return [i for i in turn if self._resting[i] <= now] + [
            i for i in turn if self._resting[i] > now
        ]

    def key(self, index: int) -> str:
        return self._keys[index]

    def rest(self, index: int, seconds: float) -> None:
        self._resting[index] = time.monotonic() + seconds


class Upstream:
    """Owns the ClientSession and, per provider, its format and keys."""

    def __init__(self, settings: Settings) -> None:
        self.providers: dict[str, Provider] = {p.name: make(p) for p in settings.providers}
        self._rings = {
            p.name: KeyRing(tuple(k.reveal() for k in p.api_keys)) for p in settings.providers
        }
        self._timeouts = {p.name: _timeout(p) for p in settings.providers}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "hubproxy/0.1"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self, provider: str, request: UpstreamRequest, extra: Mapping[str, str] | None = None
    ) -> Response:
        """POST the request. A key the upstream refuses (401, 403) or rate-limits (429) rests,
        and the next key is tried, as long as nothing has been read yet. The last answer, error
        or not, is returned for the caller to read."""
        fmt = self.providers[provider]
        if isinstance(fmt, FakeProvider):
            status, chunks = fmt.respond(request)
            return LocalResponse(status, chunks)
        assert self._session is not None, "Upstream.start() was not awaited"
        ring = self._rings[provider]
        headers = {**_ACCEPT, **request.headers, **(extra or {})}
        order = ring.order()
        for attempt, index in enumerate(order):
            try:
                resp = await self._session.post(
                    request.url,
                    data=request.body,
                    headers={**headers, **fmt.auth_headers(ring.key(index))},
                    timeout=self._timeouts[provider],
                )
            except BaseException as exc:
                raise _translate(exc) from exc
            rest = _REST_S.get(resp.status)
            if rest is None or attempt == len(order) - 1:
                if rest is not None:
                    ring.rest(index, _retry_after(resp.headers, rest))
                return HttpResponse(resp)
            ring.rest(index, _retry_after(resp.headers, rest))
            resp.release()
        raise UpstreamError(f"Provider '{provider}' has no API key configured.")


def _timeout(p: ProviderSettings) -> aiohttp.ClientTimeout:
    # No total: a stream may run as long as it keeps sending. sock_read is the idle limit,
    # before the headers and between chunks alike.
    return aiohttp.ClientTimeout(
        total=None, sock_connect=p.connect_timeout_s, sock_read=p.idle_timeout_s
    )


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return default


def _translate(exc: BaseException) -> BaseException:
    """aiohttp's failures as the client should see them; anything else unchanged."""
    if isinstance(exc, HubError | asyncio.CancelledError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return GatewayTimeout("Connecting to the upstream provider timed out.")
    if isinstance(exc, TimeoutError):
        return GatewayTimeout("The upstream provider stopped sending (idle timeout).")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(
            "Could not connect to the upstream provider.", code="upstream_unreachable"
        )
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(
            "The upstream provider closed the connection before the answer was complete.",
            code="upstream_disconnected",
        )
    return exc
