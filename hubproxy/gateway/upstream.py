"""Upstream providers as the core calls them: a wire format, a transport and a ring of keys,
with failover between the keys before anything has been read."""

from __future__ import annotations

import time
from collections.abc import Mapping

import aiohttp

from hubproxy.config import ProviderSettings, Settings
from hubproxy.errors import UpstreamError
from hubproxy.gateway.demo import DemoTransport
from hubproxy.gateway.transport import HttpTransport, Outbound, Response, Transport, timeout
from hubproxy.providers import make
from hubproxy.providers.base import Provider, UpstreamRequest

# A key that the upstream refused or rate-limited rests this long before it is tried again.
_REST_S = {401: 300.0, 403: 300.0, 429: 30.0}
_ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


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
    """One provider entry: its format (pure), how its requests travel, and its keys."""

    __slots__ = ("format", "name", "ring", "transport")

    def __init__(self, name: str, format: Provider, transport: Transport, ring: KeyRing) -> None:
        self.name = name
        self.format = format
        self.transport = transport
        self.ring = ring

    async def send(
        self, request: UpstreamRequest, extra: Mapping[str, str] | None = None
    ) -> Response:
        """POST the request. A key the upstream refuses (401, 403) or rate-limits (429) rests,
        and the next key is tried, as long as nothing has been read yet. The last answer, error
        or not, is returned for the caller to read."""
        ring, fmt = self.ring, self.format
        headers = {**_ACCEPT, **request.headers, **(extra or {})}
        order = ring.order()
        for attempt, index in enumerate(order):
            outbound = Outbound(
                request.url, request.body, {**headers, **fmt.auth_headers(ring.key(index))}
            )
            resp = await self.transport.send(outbound)
            rest = _REST_S.get(resp.status)
            if rest is None or attempt == len(order) - 1:
                if rest is not None:
                    ring.rest(index, _retry_after(resp.headers, rest))
                return resp
            ring.rest(index, _retry_after(resp.headers, rest))
            resp.close()
        raise UpstreamError(f"Provider '{self.name}' has no API key configured.")


class Upstreams:
    """Every configured provider, and the one ClientSession their HTTP transports share."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.providers
        self._session: aiohttp.ClientSession | None = None
        self.by_name: dict[str, Upstream] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "hubproxy/0.1"},
        )
        self.by_name = {p.name: self._upstream(p, self._session) for p in self._settings}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def _upstream(p: ProviderSettings, session: aiohttp.ClientSession) -> Upstream:
        transport: Transport
        keys: tuple[str, ...]
        if p.type == "fake":
            transport, keys = DemoTransport(), ("",)
        else:
            transport = HttpTransport(session, timeout(p.connect_timeout_s, p.idle_timeout_s))
            keys = tuple(k.reveal() for k in p.api_keys)
        return Upstream(p.name, make(p), transport, KeyRing(keys))


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return default
