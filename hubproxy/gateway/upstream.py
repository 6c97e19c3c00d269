"""Upstream providers as the core calls them: a wire format and a transport per catalog entry,
and the choice between a provider's credentials, with failover between them before anything
has been read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import aiohttp

from hubproxy.catalog.credentials import CredentialPool
from hubproxy.catalog.snapshot import ProviderEntry
from hubproxy.catalog.ssrf import GuardedResolver
from hubproxy.errors import HubError
from hubproxy.gateway.demo import DemoTransport
from hubproxy.gateway.transport import HttpTransport, Outbound, Response, Transport, timeout
from hubproxy.providers import make
from hubproxy.providers.base import Provider, UpstreamRequest

_ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
_REFUSED = frozenset({401, 403, 429})  # the credential's fault: the next one may do


class Upstream:
    """One provider entry: its format (pure) and how its requests travel."""

    __slots__ = ("entry", "format", "transport")

    def __init__(self, entry: ProviderEntry, format: Provider, transport: Transport) -> None:
        self.entry = entry
        self.format = format
        self.transport = transport

    async def send(
        self,
        pool: CredentialPool,
        request: UpstreamRequest,
        extra: Mapping[str, str] | None = None,
    ) -> Response:
        """POST the request with the pool's pick. A credential the upstream refuses (401, 403)
        or rate-limits (429) is reported to the pool, and the next is tried, as long as
        nothing has been read. The last answer, error or not, is returned for the caller to
        read; a request that got no answer raises (a HubError)."""
        headers = {**_ACCEPT, **request.headers, **(extra or {})}
        credentials = pool.order()
        if not credentials:  # a server without keys (a local model, the demo)
            return await self.transport.send(Outbound(request.url, request.body, headers))
        last = len(credentials) - 1
        auth = self.format.auth_headers
        for attempt, cred in enumerate(credentials):
            outbound = Outbound(request.url, request.body, {**headers, **auth(cred.key)})
            try:
                resp = await self.transport.send(outbound)
            except HubError:
                pool.failed(cred, None, None)
                raise
            status = resp.status
            if status not in _REFUSED:
                if status < 500:
                    pool.succeeded(cred)  # a client error is not the credential's
                else:
                    pool.failed(cred, status, None)
                return resp
            pool.failed(cred, status, _retry_after(resp.headers))
            if attempt == last:
                return resp
            resp.close()
        raise AssertionError("unreachable: the loop returns on its last credential")


class Upstreams:
    """The Upstream of each catalog entry, rebuilt when its entry changes, and the one
    ClientSession their HTTP transports share (behind the SSRF guard: names that resolve to
    private addresses are refused at connect time, but for the config file's own hosts)."""

    def __init__(
        self,
        *,
        exempt_hosts: Iterable[str],
        allow_private: bool,
        wrap: Callable[[Transport], Transport] | None = None,
    ) -> None:
        self._resolver = GuardedResolver(exempt=exempt_hosts, allow_private=allow_private)
        self._wrap = wrap  # around every transport: the drain's
        self._session: aiohttp.ClientSession | None = None
        self._by_name: dict[str, Upstream] = {}

    def exempt(self, hosts: Iterable[str]) -> None:
        """The config file's hosts changed (a reload): they pass the SSRF guard now."""
        self._resolver.exempt = frozenset(h.lower() for h in hosts)

    async def start(self) -> None:
        resolver = self._resolver
        connector = aiohttp.TCPConnector(
            limit=0, ttl_dns_cache=300, keepalive_timeout=60, resolver=resolver
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            auto_decompress=True,
            # Calls of every user share this session: an upstream's cookies (Cloudflare's,
            # in front of OpenAI) must not be kept and sent with the next user's call.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def get(self, entry: ProviderEntry) -> Upstream:
        """The Upstream for `entry`, as it is in the caller's snapshot."""
        known = self._by_name.get(entry.name)
        if known is not None and (known.entry is entry or known.entry == entry):
            return known
        upstream = self._by_name[entry.name] = self._build(entry)
        return upstream

    def _build(self, entry: ProviderEntry) -> Upstream:
        transport: Transport
        if entry.type == "fake":
            transport = DemoTransport()
        else:
            assert self._session is not None, "Upstreams.start() was not awaited"
            transport = HttpTransport(
                self._session, timeout(entry.connect_timeout_s, entry.idle_timeout_s)
            )
        if self._wrap is not None:
            transport = self._wrap(transport)
        return Upstream(entry, make(entry.settings()), transport)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None
