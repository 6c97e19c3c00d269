"""The connection edge: read timeouts against slow clients, malformed HTTP, and access lines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from hubproxy.app import start
from tests.conftest import Hub, HubFactory, make_settings

TIMEOUT_S = 0.5  # the read timeout the tests configure: short, so that they stay fast
WAIT_S = 5.0  # how long a test waits for the hub at most: a hang fails, never stalls


async def exchange(hub: Hub, *parts: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send `parts` on a raw connection, `pause` seconds apart; then read until the hub closes
    the connection (bounded). Returns what came back and when the connection ended."""
    host, port = hub.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    try:
        for i, part in enumerate(parts):
            if i and pause:
                await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), WAIT_S)  # read() returns at EOF
        return answer, time.monotonic() - started
    finally:
        writer.close()


def head_and_json(answer: bytes) -> tuple[bytes, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, orjson.loads(body)


@pytest.fixture
async def quick(hub_factory: HubFactory) -> Hub:
    return await hub_factory(server={"read_timeout_s": TIMEOUT_S})


async def test_a_client_that_sends_its_headers_slowly_is_disconnected(quick: Hub) -> None:
    answer, took = await exchange(quick, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert answer == b"", "no answer to half a request"
    assert TIMEOUT_S * 0.9 <= took < WAIT_S


async def test_an_idle_connection_is_closed_after_the_read_timeout(quick: Hub) -> None:
    answer, took = await exchange(quick, b"")
    assert answer == b"" and took < WAIT_S


async def test_a_client_that_sends_its_body_slowly_gets_408(quick: Hub) -> None:
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {quick.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    answer, took = await exchange(quick, head, b'{"model": ', pause=0.1)
    status, body = head_and_json(answer)
    assert status.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in status
    assert body["error"]["code"] == "request_timeout" and body["error"]["type"]
    # The read timeout, then at most as long again draining what the client still sends.
    assert TIMEOUT_S * 0.9 <= took < WAIT_S
    assert quick.calls() == []


async def test_a_slow_body_on_the_anthropic_endpoint_gets_its_shape(quick: Hub) -> None:
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {quick.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    ).encode()
    answer, _ = await exchange(quick, head)
    status, body = head_and_json(answer)
    assert status.startswith(b"HTTP/1.1 408 ") and body["type"] == "error"


async def test_a_body_within_the_timeout_is_served(quick: Hub) -> None:
    data = b'{"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]}'
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {quick.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer, _ = await exchange(quick, head, data[:10], data[10:], pause=0.1)
    assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
    ],
    ids=["cr-in-header", "nul-in-header", "duplicate-content-length"],
)
async def test_malformed_http_is_refused_with_400_and_closed(
    hub: Hub, request_bytes: bytes
) -> None:
    """aiohttp's parser answers these itself, before any application code runs: a plain-text
    400 (not OpenAI's shape: see README, "Limits and timeouts"), then it closes."""
    answer, _ = await exchange(hub, request_bytes)
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))


# --- access lines ---------------------------------------------------------------------------


async def access_lines(hub: Hub, method: str, path: str, **kw: Any) -> list[dict[str, Any]]:
    with capture_logs() as logs:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, hub.url + path, **kw) as r,
        ):
            await r.read()
    return [e for e in logs if e.get("event") == "request" and e.get("path") == path]


async def test_5xx_access_lines_are_warnings_with_the_reason(hub: Hub) -> None:
    body = {"model": "up/e500", "messages": [{"role": "user", "content": "hi"}]}
    (line,) = await access_lines(
        hub, "POST", "/v1/chat/completions", json=body,
        headers={"Authorization": f"Bearer {hub.key}"},
    )  # fmt: skip
    assert line["status"] == 502 and line["log_level"] == "warning"
    assert line["reason"] == "upstream_error"


async def test_4xx_access_lines_are_info_and_carry_the_reason(hub: Hub) -> None:
    (line,) = await access_lines(hub, "GET", "/v1/models", headers={"Authorization": "Bearer x"})
    assert (line["status"], line["log_level"], line["reason"]) == (401, "info", "invalid_api_key")
    (line,) = await access_lines(
        hub, "GET", "/api/user/calls", params={"limit": "0"},
        headers={"Authorization": f"Bearer {hub.key}"},
    )  # fmt: skip
    assert (line["status"], line["reason"]) == (400, "invalid_request_error")


async def test_2xx_access_lines_are_info_without_a_reason(hub: Hub) -> None:
    (line,) = await access_lines(hub, "GET", "/health")
    assert line["status"] == 200 and line["log_level"] == "info" and "reason" not in line


async def test_reuse_port_lets_instances_share_a_port_and_both_serve(tmp_path: Path) -> None:
    """[server] reuse_port: a second instance binds the port the first serves on (without it,
    the bind fails), and the kernel hands connections to both."""
    demo = {"providers": [{"name": "demo", "type": "fake", "models": ["echo"]}]}
    runners: list[web.AppRunner] = []
    try:
        first_dir, second_dir = tmp_path / "a", tmp_path / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        shared = {**demo, "server": {"reuse_port": True, "instance": "a"}}
        runner, port = await start(make_settings(first_dir, shared), port=0)
        runners.append(runner)
        alone = make_settings(second_dir, {**demo, "server": {"instance": "b"}})
        with pytest.raises(OSError):
            await start(alone, port=port)
        second = make_settings(
            second_dir, {**shared, "server": {"reuse_port": True, "instance": "b"}}
        )
        runner, same = await start(second, port=port)
        runners.append(runner)
        assert same == port
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                    assert resp.status == 200
    finally:
        for runner in runners:
            await runner.cleanup()
