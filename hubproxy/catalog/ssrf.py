"""The SSRF guard: upstream addresses must be public, when a base_url is set and at connect.

A base_url set through the API or the CLI is refused when its host is, or resolves to, a
loopback, private, link-local, multicast, reserved or cloud-metadata address. The same check
runs at connect time in `GuardedResolver` (an aiohttp resolver), so a name that re-points to
such an address later (DNS rebinding) is refused too. `[security] allow_private_upstreams`
lifts both on purpose (Ollama, vLLM on the LAN). Hosts from the config file are the
operator's own and exempt.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from hubproxy.errors import BadRequest

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata endpoints (most fall in a blocked range anyway; named so the
# refusal says what they are).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)


class Blocked(Exception):
    """An address the guard refuses; the message names its class."""


def classify(address: IP) -> str | None:
    """Why `address` may not be an upstream, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and address.teredo is not None:
            mapped = address.teredo[1]
        if mapped is not None:
            inner = classify(mapped)
            return None if inner is None else f"{inner} (inside IPv6 {address})"
    checks = (
        (address in METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a non-public address"),
    )
    return next((why for hit, why in checks if hit), None)


def check_address(host: str, address: str) -> None:
    why = classify(ipaddress.ip_address(address.split("%", 1)[0]))
    if why is not None:
        shown = host if host == address else f"{host} ({address})"
        raise Blocked(f"{shown} is {why}")


def literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def parse_base_url(value: Any, param: str = "base_url") -> tuple[str, str]:
    """(the URL without a trailing slash, its host), or a 400 that says what a base_url is."""
    fix = "an http(s) URL such as https://api.openai.com/v1"
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise BadRequest(f"'{param}' must be {fix}.", param=param)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise BadRequest(f"'{param}' is not a valid URL; use {fix}.", param=param) from None
    host = parts.hostname or ""
    bad = (
        parts.scheme not in ("http", "https") or not host or parts.username is not None
        or parts.password is not None or parts.query or parts.fragment
        or any(c.isspace() or ord(c) < 32 for c in value) or port == 0
    )  # fmt: skip
    if bad:
        raise BadRequest(
            f"'{param}' must be {fix}: no credentials, query or fragment in it.", param=param
        )
    return value.rstrip("/"), host


async def check_base_url(
    url: str,
    *,
    allow_private: bool,
    resolver: AbstractResolver | None = None,
    param: str = "base_url",
) -> str:
    """The URL, once its host is a public address or resolves only to public ones. A name
    that does not resolve now is let through: the connect-time guard checks it then."""
    url, host = parse_base_url(url, param)
    if allow_private:
        return url
    try:
        if literal(host) is not None:
            check_address(host, host.strip("[]"))
            return url
        try:
            found = await (resolver or ThreadedResolver()).resolve(host, 0, socket.AF_UNSPEC)
        except OSError:
            return url
        for entry in found:
            check_address(host, entry["host"])
    except Blocked as exc:
        raise BadRequest(
            f"'{param}' points at {exc}, which upstreams may not use. Fix: use the "
            "provider's public URL, or set [security] allow_private_upstreams = true for a "
            "self-hosted model server.",
            code="upstream_address_blocked",
            param=param,
        ) from None
    return url


class GuardedResolver(AbstractResolver):
    """Resolves through `inner` and refuses (OSError, which aiohttp reports as a connect
    failure) any answer that is not a public address. `exempt` hosts (the config file's own
    upstreams) pass unchecked. Plug into the upstream ClientSession's TCPConnector.

    aiohttp does not ask a resolver about literal IP hosts: those are checked when the
    base_url is set, and cannot change after."""

    def __init__(
        self,
        inner: AbstractResolver | None = None,
        *,
        exempt: Iterable[str] = (),
        allow_private: bool = False,
    ) -> None:
        self._inner = inner if inner is not None else ThreadedResolver()
        self.exempt = frozenset(h.lower() for h in exempt)
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if self._allow_private or host.lower() in self.exempt:
            return found
        try:
            for entry in found:
                check_address(host, entry["host"])
        except Blocked as exc:
            # (errno, text): aiohttp shows the text in its connect error.
            raise OSError(errno.EACCES, f"refused by the SSRF guard: {exc}") from None
        return found

    async def close(self) -> None:
        await self._inner.close()


def config_hosts(base_urls: Iterable[str]) -> set[str]:
    """The hosts of the config file's upstreams: the operator set them, not an API caller."""
    return {h for url in base_urls if url and (h := urlsplit(url).hostname)}
