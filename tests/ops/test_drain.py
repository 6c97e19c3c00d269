"""`hubproxy serve` as a process: SIGTERM drains (readiness first, then the listener, then the
calls left are ended and recorded as `shutdown`), SIGHUP reloads the config."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import to_toml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_process import Server

pytestmark = pytest.mark.slow


async def read_stream(s: aiohttp.ClientSession, url: str, key: str, model: str) -> bytes:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "slow"}]}
    headers = {"Authorization": f"Bearer {key}"}
    async with s.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status == 200
        out = b""
        async for chunk in r.content.iter_any():
            out += chunk
        return out


async def test_sigterm_with_20_slow_streams(
    tmp_path: Path, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    provider = {"name": "slow", "type": "openai", "base_url": base_url, "api_key": "sk-x",
                "idle_timeout_s": 60.0}  # fmt: skip
    server = Server(tmp_path, [provider], security={"allow_private_upstreams": True})
    text = server.config.read_text()
    assert "[server]\n" in text
    server.config.write_text(text.replace("[server]\n", "[server]\ndrain_s = 3.0\n", 1))
    try:
        await server.start()
        assert server.proc is not None
        async with aiohttp.ClientSession() as s:
            streams = [
                asyncio.ensure_future(
                    read_stream(s, server.url, server.key, "slow/gated" if i < 10 else "slow/stall")
                )
                for i in range(20)
            ]
            async with s.get(server.url + "/health/ready") as r:  # opens a kept-alive connection
                assert r.status == 200
            await asyncio.wait_for(fake.first_sent.wait(), 10)
            for _ in range(100):  # bounded: until every call is in flight
                conn = sqlite3.connect(server.settings.database.path)
                n = conn.execute("SELECT COUNT(*) FROM model_calls").fetchone()[0]
                conn.close()
                if n == 20:
                    break
                await asyncio.sleep(0.05)
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.1)
            async with s.get(server.url + "/health/ready") as r:  # the same connection
                assert r.status == 503
                assert "draining" in (await r.json())["reasons"][0]
            fake.release.set()  # the gated ten can finish now; the stalled ten never will
            try:
                bodies = await asyncio.wait_for(asyncio.gather(*streams), 15)
            except TimeoutError:
                lines = [x for x in server.log.read_text().splitlines() if '"request"' not in x]
                raise AssertionError("\n".join(lines)[-3000:]) from None
        code = await asyncio.to_thread(server.proc.wait, 15)
    finally:
        server.stop(signal.SIGKILL)
    assert code == 0, server.log.read_text()
    for body in bodies[:10]:
        assert body.endswith(b"data: [DONE]\n\n")
    for body in bodies[10:]:
        assert b'"shutdown"' in body and b"[DONE]" not in body
    conn = sqlite3.connect(server.settings.database.path)
    rows = conn.execute("SELECT model, status, error FROM model_calls").fetchall()
    conn.close()
    assert len(rows) == 20
    assert sorted(set(rows)) == [("gated", "success", None), ("stall", "failed", "shutdown")]


async def test_sighup_reloads_providers_and_log_level(tmp_path: Path) -> None:
    server = Server(tmp_path)
    try:
        await server.start()
        assert server.proc is not None
        raw = server.config.read_text()
        body = {"model": "extra/echo", "messages": [{"role": "user", "content": "new?"}]}
        auth = {"Authorization": f"Bearer {server.key}"}
        async with aiohttp.ClientSession() as s:
            url = server.url + "/v1/chat/completions"
            async with s.post(url, json=body, headers=auth) as r:
                assert r.status == 404  # not configured yet
            server.config.write_text(
                raw + to_toml({"log": {"level": "warning"}, "providers": [
                    {"name": "extra", "type": "fake", "models": ["echo"]}]})
                .replace("[log]", "\n[log]", 1)
            )  # fmt: skip
            server.proc.send_signal(signal.SIGHUP)
            for _ in range(100):  # bounded: until the reload is logged
                if "reloaded_config" in server.log.read_text():
                    break
                await asyncio.sleep(0.05)
            async with s.post(url, json=body, headers=auth) as r:
                assert r.status == 200
        assert server.proc.poll() is None, "SIGHUP stopped the server"
    finally:
        server.stop()
    assert server.proc.returncode == 0
    [line] = [x for x in server.lines() if x["event"] == "reloaded_config"]
    assert line["changed"] == ["log.level", "providers"]
    after = server.lines()[server.lines().index(line) + 1 :]
    assert not any(x["level"] == "info" for x in after)  # warning level from now on


async def test_sighup_reloads_the_default_limits(tmp_path: Path) -> None:
    """[limits] key_rpm set in the file and a SIGHUP: the running server refuses the second
    call of the minute, without a restart."""
    server = Server(tmp_path)
    try:
        await server.start()
        assert server.proc is not None
        raw = server.config.read_text()
        body = {"model": "demo/echo", "messages": [{"role": "user", "content": "hi"}]}
        auth = {"Authorization": f"Bearer {server.key}"}
        url = server.url + "/v1/chat/completions"
        async with aiohttp.ClientSession() as s:
            for _ in range(3):  # no limit yet
                async with s.post(url, json=body, headers=auth) as r:
                    assert r.status == 200
            server.config.write_text(raw + "\n" + to_toml({"limits": {"key_rpm": 1}}))
            server.proc.send_signal(signal.SIGHUP)
            for _ in range(100):  # bounded: until the reload is logged
                if "reloaded_config" in server.log.read_text():
                    break
                await asyncio.sleep(0.05)
            statuses = []
            for _ in range(2):
                async with s.post(url, json=body, headers=auth) as r:
                    statuses.append(r.status)
                    limit = r.headers.get("x-ratelimit-limit-requests")
        assert statuses == [200, 429] and limit == "1"
    finally:
        server.stop()
    [line] = [x for x in server.lines() if x["event"] == "reloaded_config"]
    assert line["changed"] == ["limits"]
