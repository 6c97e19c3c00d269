"""`hubproxy serve` as a real process: its log lines, and kill -9 under load losing nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from hubproxy import config
from hubproxy.store.backend import connect_blocking
from tests.conftest import add_key, to_toml

PROVIDER_SECRET = "sk-provider-secret-never-logged-123456"
BACKENDS = ("sqlite", "postgres")  # each test here runs on both (tests/conftest.py)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `hubproxy serve` subprocess with its stdout in a file."""

    def __init__(
        self,
        tmp_path: Path,
        providers: list[dict[str, Any]] | None = None,
        *,
        database_url: str | None = None,
        **sections: Any,
    ) -> None:
        self.port = free_port()
        raw: dict[str, Any] = {
            **sections,
            "server": {"port": self.port},
            "database": {"path": "hub.db", **({"url": database_url} if database_url else {})},
            "providers": [
                {"name": "demo", "type": "fake", "models": ["echo"]},
                {"name": "up", "type": "openai", "base_url": "http://127.0.0.1:9/v1",
                 "api_key": PROVIDER_SECRET},
                *(providers or []),
            ],
        }  # fmt: skip
        self.config = tmp_path / "hubproxy.toml"
        self.config.write_text(to_toml(raw))
        self.settings = config.load(self.config)
        self.key = add_key(self.settings)
        self.log = tmp_path / "stdout.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hubproxy", "serve", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        async with aiohttp.ClientSession() as s:
            for _ in range(200):  # bounded: 200 x 50 ms
                try:
                    async with s.get(self.url + "/health") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("hubproxy did not start:\n" + self.log.read_text())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.log.read_bytes().splitlines() if line]


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[Server]:
    srv = Server(tmp_path, database_url=database_url)
    yield srv
    srv.stop(signal.SIGKILL)


async def test_json_access_log_without_secrets(server: Server) -> None:
    await server.start()
    body = {"model": "demo/echo", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession() as s:
        auth = {"Authorization": f"Bearer {server.key}", "X-Request-Id": "log-test-1"}
        async with s.post(server.url + "/v1/chat/completions", json=body, headers=auth) as r:
            assert r.status == 200
            await r.read()
        bad = {"Authorization": "Bearer hp-this-is-a-wrong-key-0123456789"}
        async with s.post(server.url + "/v1/chat/completions", json=body, headers=bad) as r:
            assert r.status == 401
        async with s.post(
            server.url + "/v1/chat/completions",
            json={**body, "model": "up/gpt"},
            headers={"Authorization": f"Bearer {server.key}"},
        ) as r:
            assert r.status == 502
    server.stop()  # SIGTERM: a clean stop
    assert server.proc is not None and server.proc.returncode == 0
    lines = server.lines()  # every line parses as JSON: not a TTY
    [access] = [x for x in lines if x.get("request_id") == "log-test-1"]
    assert access["event"] == "request" and access["status"] == 200
    assert access["user"] == "alice" and access["model"] == "demo/echo"
    assert access["prompt_tokens"] > 0 and access["completion_tokens"] > 0
    assert {"duration_ms", "ttfb_ms", "timestamp", "level"} <= set(access)
    text = server.log.read_text()
    for secret in (server.key, PROVIDER_SECRET, "hp-this-is-a-wrong-key"):
        assert secret not in text


async def test_kill_9_under_load_loses_no_completed_call(server: Server) -> None:
    await server.start()
    completed: list[str] = []
    stop = asyncio.Event()

    async def client(n: int) -> None:
        headers = {"Authorization": f"Bearer {server.key}"}
        async with aiohttp.ClientSession() as s:
            for i in range(10_000):  # bounded; the kill ends it long before
                if stop.is_set():
                    return
                rid = f"dur-{n}-{i}"
                stream = i % 2 == 0
                body = {"model": "demo/echo", "stream": stream,
                        "messages": [{"role": "user", "content": f"call {rid}"}]}  # fmt: skip
                try:
                    async with s.post(
                        server.url + "/v1/chat/completions",
                        json=body, headers={**headers, "X-Request-Id": rid},
                    ) as r:  # fmt: skip
                        data = await r.read()
                except aiohttp.ClientError:
                    return  # the server is gone
                if r.status == 200 and (not stream or data.endswith(b"data: [DONE]\n\n")):
                    completed.append(rid)

    clients = [asyncio.create_task(client(n)) for n in range(16)]
    for _ in range(200):  # bounded: wait for real load, at most 10 s
        if len(completed) >= 300:
            break
        await asyncio.sleep(0.05)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=30)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*clients), 30)
    seen = list(completed)
    assert len(seen) >= 300

    await server.start()  # restart on the same database
    conn, _ = connect_blocking(server.settings.database)
    try:
        rows = conn.execute("SELECT request_id, status FROM model_calls").fetchall()
    finally:
        conn.close()
    status = {r["request_id"]: r["status"] for r in rows}
    missing = [rid for rid in seen if status.get(rid) != "success"]
    assert missing == [], f"{len(missing)} completed calls lost, e.g. {missing[:3]}"
    assert "processing" not in status.values(), "the restart must fail calls left in flight"
    server.stop()


async def test_kill_9_with_billing_keeps_the_ledger_whole(
    tmp_path: Path, database_url: str | None
) -> None:
    rate = {"model": "demo/echo", "input": "1", "output": "1"}
    server = Server(
        tmp_path, database_url=database_url, billing={"mode": "credits", "rates": [rate]}
    )
    try:
        grant = [sys.executable, "-m", "hubproxy", "credits", "grant", "alice", "1",
                 "--config", str(server.config)]  # fmt: skip
        assert subprocess.run(grant, capture_output=True, timeout=60).returncode == 0
        await server.start()
        headers = {"Authorization": f"Bearer {server.key}"}
        body = {
            "model": "demo/echo",
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        }
        done = 0

        async def client() -> None:
            nonlocal done
            async with aiohttp.ClientSession() as s:
                for _ in range(10_000):  # bounded; the kill ends it long before
                    try:
                        async with s.post(server.url + "/v1/chat/completions", json=body,
                                          headers=headers) as r:  # fmt: skip
                            await r.read()
                            done += r.status == 200
                    except aiohttp.ClientError:
                        return

        clients = [asyncio.create_task(client()) for _ in range(8)]
        for _ in range(200):  # bounded: at most 10 s of load
            if done >= 200:
                break
            await asyncio.sleep(0.05)
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
        await asyncio.wait_for(asyncio.gather(*clients), 30)
        await server.start()

        conn, _ = connect_blocking(server.settings.database)
        try:
            [row] = conn.execute(
                "SELECT (SELECT balance FROM credit_balances WHERE user_id = 1) AS balance, "
                "(SELECT sum(amount) FROM credit_ledger WHERE user_id = 1) AS ledger, "
                "(SELECT sum(credits) FROM model_calls) AS billed, "
                "(SELECT count(*) FROM model_calls WHERE status = 'processing') AS open"
            ).fetchall()
        finally:
            conn.close()
        assert row["balance"] == row["ledger"] == 1_000_000 - row["billed"]
        assert row["billed"] > 0 and row["open"] == 0
        # No hold survived: a call that needs every remaining credit is admitted. Its hold is
        # the prompt estimate (8 tokens) plus max_tokens, at one micro-credit a token.
        needs_all = {**body, "stream": False, "max_tokens": row["balance"] - 8}
        async with (
            aiohttp.ClientSession() as s,
            s.post(server.url + "/v1/chat/completions", json=needs_all, headers=headers) as r,
        ):
            assert r.status == 200, await r.text()
        async with aiohttp.ClientSession() as s, s.post(
            server.url + "/v1/chat/completions",
            json={**needs_all, "max_tokens": row["balance"]}, headers=headers,
        ) as r:  # fmt: skip
            assert r.status == 402
    finally:
        server.stop(signal.SIGKILL)


# A test-only launcher: `hubproxy serve` with the usage rollups made to fail on their first
# drain that has a call to count, which kills the writer. Nothing in hubproxy can do this.
_BROKEN_ROLLUPS = """
import sys
from hubproxy.cli.main import main
from hubproxy.store import usage

drain = usage.Rollups.drain

def broken(self):
    if drain(self):
        raise RuntimeError("injected: the rollups broke")
    return []

usage.Rollups.drain = broken
sys.exit(main(["serve", "--config", sys.argv[1]]))
"""


async def test_a_dead_writer_exits_non_zero_and_its_journal_keeps_the_call(
    server: Server,
) -> None:
    """The call's record was journaled (durable) before its [DONE] went out; the writer then
    died committing it. The process exits 1 for systemd, and the next start commits the call
    from the journal: a client that saw a call complete never loses its record."""
    with server.log.open("ab") as out:
        server.proc = subprocess.Popen(
            [sys.executable, "-c", _BROKEN_ROLLUPS, str(server.config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    body = {"model": "demo/echo", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    auth = {"Authorization": f"Bearer {server.key}"}

    async def call() -> bytes:
        """Raw HTTP, read to the end of the connection: what the client got, however cut."""
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        payload = orjson.dumps(body)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
            + f"Authorization: {auth['Authorization']}\r\n".encode()
            + f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        try:
            return await reader.read(-1)  # until the server closes the connection
        finally:
            writer.close()

    async with aiohttp.ClientSession() as s:
        for _ in range(200):  # bounded: 200 x 50 ms for the server to come up
            try:
                async with s.get(server.url + "/health") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("hubproxy did not start:\n" + server.log.read_text())
    data = await asyncio.wait_for(call(), 20)  # an end, not a hang
    assert data.startswith(b"HTTP/1.1 200") and b"[DONE]" in data  # journaled, so released
    code = await asyncio.wait_for(asyncio.to_thread(server.proc.wait), 20)
    assert code == 1, server.log.read_text()
    events = [line.get("event") for line in server.lines()]
    assert "writer_died" in events and "exiting_writer_died" in events
    conn, _ = connect_blocking(server.settings.database)
    try:
        done = "SELECT count(*) FROM model_calls WHERE status = 'success'"
        assert conn.execute(done).fetchone()[0] == 0  # not in the database: only journaled
    finally:
        conn.close()
    await server.start()  # a healthy server: it replays the journal before serving
    conn, _ = connect_blocking(server.settings.database)
    try:
        rows = conn.execute("SELECT status, completion_tokens FROM model_calls").fetchall()
    finally:
        conn.close()
    assert [(r[0], r[1] > 0) for r in rows] == [("success", True)]
