"""`credentials test`: one real, minimal call through a provider with one key.

A one-token chat request in the provider's own wire format, sent through the same Transport
the gateway uses (no redirects followed), on a session of its own behind the SSRF guard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from hubproxy.catalog.snapshot import ProviderEntry
from hubproxy.errors import HubError, scrub
from hubproxy.gateway.demo import DemoTransport
from hubproxy.gateway.transport import HttpTransport, Outbound, Transport, timeout
from hubproxy.providers import make

PING = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    status: int | None  # the upstream's HTTP status; None when it never answered
    latency_ms: int
    error: str | None
    retry_after_s: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


async def probe(
    entry: ProviderEntry, key: str, model: str, *, resolver: AbstractResolver | None
) -> ProbeResult:
    """Send PING to `model` with `key`. Never raises for what the upstream does."""
    fmt = make(entry.settings([key]))
    request = fmt.chat_request(dict(PING), model, stream=False)
    started = time.perf_counter()

    def took() -> int:
        return int((time.perf_counter() - started) * 1000)

    headers = {"Content-Type": "application/json", **request.headers, **fmt.auth_headers(key)}
    outbound = Outbound(request.url, request.body, headers)
    connector = aiohttp.TCPConnector(resolver=resolver) if resolver else aiohttp.TCPConnector()
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
    ) as session:
        transport: Transport = (
            DemoTransport()
            if entry.type == "fake"
            else HttpTransport(session, timeout(entry.connect_timeout_s, entry.idle_timeout_s))
        )
        try:
            resp = await transport.send(outbound)
            try:
                body = await resp.read()
            finally:
                resp.close()
        except HubError as exc:
            detail = scrub(exc.message).replace(key, "[redacted]")[:300]
            return ProbeResult(ok=False, status=None, latency_ms=took(), error=detail)
    if resp.status < 400:
        return ProbeResult(ok=True, status=resp.status, latency_ms=took(), error=None)
    return ProbeResult(
        ok=False,
        status=resp.status,
        latency_ms=took(),
        error=scrub(fmt.error(resp.status, body).message).replace(key, "[redacted]"),
        retry_after_s=_retry_after(resp.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def pick_model(entry: ProviderEntry, offered: frozenset[str] | None, asked: Any) -> str | None:
    """The model to test with: the one asked for, else one the provider offers."""
    if isinstance(asked, str) and asked:
        return asked
    if entry.type == "fake":
        return "echo"
    return min(offered) if offered else None
