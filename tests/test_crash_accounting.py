"""After kill -9, the usage views still equal the calls and the ledger: rollups that were in
memory only are recounted at start from the calls past the watermark."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from hubproxy.store.backend import connect_blocking
from tests.conftest import add_key
from tests.test_process import Server

BACKENDS = ("sqlite", "postgres")  # run on both (tests/conftest.py)


async def usage_of(server: Server, key: str, **params: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            server.url + "/api/admin/usage",
            params={"from": "0", **params},
            headers={"Authorization": f"Bearer {key}"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


def truth(server: Server) -> dict[str, int]:
    """What the usage views must say: sums over the calls, and the debits in the ledger."""
    conn, _ = connect_blocking(server.settings.database)
    try:
        [calls] = conn.execute(
            "SELECT count(*) AS requests, "
            "coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS errors, "
            "coalesce(sum(prompt_tokens), 0) AS prompt_tokens, "
            "coalesce(sum(completion_tokens), 0) AS completion_tokens, "
            "coalesce(sum(credits), 0) AS credits FROM model_calls"
        ).fetchall()
        [debits] = conn.execute(
            "SELECT -coalesce(sum(amount), 0) FROM credit_ledger WHERE kind = 'debit'"
        ).fetchone()
    finally:
        conn.close()
    assert calls["credits"] == debits, "each call's debit is in the ledger"
    return dict(calls)


async def test_kill_9_right_after_done_keeps_usage_equal_to_calls_and_ledger(
    tmp_path: Path, database_url: str | None
) -> None:
    rate = {"model": "demo/echo", "input": "1", "output": "1"}
    server = Server(
        tmp_path, database_url=database_url, billing={"mode": "credits", "rates": [rate]}
    )
    root = add_key(server.settings, "root", "admin")
    try:
        grant = [sys.executable, "-m", "hubproxy", "credits", "grant", "alice", "100",
                 "--config", str(server.config)]  # fmt: skip
        assert subprocess.run(grant, capture_output=True, timeout=60).returncode == 0
        await server.start()
        assert server.proc is not None
        body = {"model": "demo/echo", "stream": True,
                "messages": [{"role": "user", "content": "count me"}]}  # fmt: skip
        done = 0
        killed = asyncio.Event()

        async def client() -> None:
            nonlocal done
            headers = {"Authorization": f"Bearer {server.key}"}
            async with aiohttp.ClientSession() as s:
                for _ in range(10_000):  # bounded; the kill ends it long before
                    try:
                        async with s.post(
                            server.url + "/v1/chat/completions", json=body, headers=headers
                        ) as r:
                            data = await r.read()
                    except aiohttp.ClientError:
                        return
                    if data.endswith(b"data: [DONE]\n\n"):
                        done += 1
                        if done >= 150 and not killed.is_set():
                            killed.set()  # at once, on a [DONE]: its rollup is in memory
                            os.kill(server.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
                            return

        clients = [asyncio.create_task(client()) for _ in range(8)]
        await asyncio.wait_for(killed.wait(), 30)
        server.proc.wait(timeout=30)
        await asyncio.wait_for(asyncio.gather(*clients), 30)

        await server.start()  # restart on the same database
        want = truth(server)
        assert want["requests"] >= 150
        for group_by in ("day", "hour", "model"):
            totals = (await usage_of(server, root, group_by=group_by))["totals"]
            got = {name: totals[name] for name in want}
            assert got == want, group_by

        # A second start recounts nothing twice.
        server.stop()
        await server.start()
        assert (await usage_of(server, root))["totals"]["requests"] == want["requests"]
    finally:
        server.stop(signal.SIGKILL)
