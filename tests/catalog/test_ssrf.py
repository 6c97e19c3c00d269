"""The SSRF guard: each address class refused, literal or resolved; rebinding refused at
connect time; the opt-out. No real DNS: literal IPs and a fake resolver."""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from hubproxy.catalog.ssrf import GuardedResolver, check_base_url, classify
from hubproxy.errors import BadRequest
from tests.fakes.wire import serve

CLASSES = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fd12::1": "private",
    "169.254.1.1": "link-local",
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "169.254.169.254": "cloud metadata",
    "fd00:ec2::254": "cloud metadata",
    "100.100.100.200": "cloud metadata",
    "100.64.0.1": "non-public",  # carrier-grade NAT
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
}


class FakeResolver(AbstractResolver):
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"no such host {host}")
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(("address", "kind"), CLASSES.items())
async def test_each_address_class_is_refused(address: str, kind: str) -> None:
    assert kind in (classify(ipaddress.ip_address(address)) or "")
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(BadRequest, match=kind) as err:
        await check_base_url(
            f"http://{host}:8080/v1", allow_private=False, resolver=FakeResolver({})
        )
    assert err.value.param == "base_url" and "allow_private_upstreams" in err.value.message
    opened = await check_base_url(
        f"http://{host}/v1/", allow_private=True, resolver=FakeResolver({})
    )
    assert opened == f"http://{host}/v1"


async def test_names_are_checked_by_what_they_resolve_to() -> None:
    resolver = FakeResolver(
        {
            "api.example.com": ["93.184.216.34"],
            "sneaky.example.com": ["93.184.216.34", "10.0.0.5"],
            "metadata.google.internal": ["169.254.169.254"],
        }
    )
    url = await check_base_url("https://api.example.com/v1", allow_private=False, resolver=resolver)
    assert url == "https://api.example.com/v1"
    assert classify(ipaddress.ip_address("93.184.216.34")) is None
    for host, kind in (("sneaky.example.com", "private"), ("metadata.google.internal", "metadata")):
        with pytest.raises(BadRequest, match=kind):
            await check_base_url(f"https://{host}/v1", allow_private=False, resolver=resolver)
    # Not resolvable now: let through, the connect-time guard checks it then.
    await check_base_url("https://later.example.com", allow_private=False, resolver=resolver)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.example.com",
        "https://",
        "not a url",
        "https://u:p@api.example.com",
        "https://api.example.com/v1?x=1",
        "https://api.example.com:99999",
        42,
        "",
    ],
)
async def test_malformed_urls_are_refused(url: object) -> None:
    with pytest.raises(BadRequest) as err:
        await check_base_url(url, allow_private=True, resolver=FakeResolver({}))  # type: ignore[arg-type]
    assert err.value.param == "base_url"


async def test_the_resolver_refuses_a_rebound_name_at_connect_time() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="reached")

    app = web.Application()
    app.router.add_get("/", ok)
    async with serve(app) as url:
        port = url.rsplit(":", 1)[1]
        inner = FakeResolver({"rebound.example.com": ["127.0.0.1"], "mine.internal": ["127.0.0.1"]})

        async def get(resolver: AbstractResolver, host: str) -> str:
            connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(f"http://{host}:{port}/") as resp,
            ):
                return await resp.text()

        guard = GuardedResolver(inner, exempt=["mine.internal"])
        with pytest.raises(aiohttp.ClientConnectorError, match="SSRF guard"):
            await get(guard, "rebound.example.com")
        assert await get(guard, "mine.internal") == "reached"  # a config-file host
        assert (
            await get(GuardedResolver(inner, allow_private=True), "rebound.example.com")
            == "reached"
        )
