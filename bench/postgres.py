"""`--backend postgres` (issue #12): a throwaway PostgreSQL cluster with PostgreSQL's default
durability (fsync on; tests/pgcluster.py), a database per hubproxy target, and the configs
that point at it: one instance, and three instances sharing one port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from bench import billing, hub
from tests.pgcluster import Server, cluster

ONE = "hubproxy-pg"  # the targets' service names (bench/plan.py)
THREE = "hubproxy-pg3"
INSTANCES = 3


@contextmanager
def server() -> Iterator[Server]:
    with cluster(durable=True) as running:
        yield running


def create_database(pg: Server, name: str) -> str:
    """An empty database; its url. `hubproxy migrate` fills it."""

    async def create() -> None:
        conn = await asyncpg.connect(pg.url("postgres"), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return pg.url(name)


def configs(
    folder: Path, port: int, upstream_url: str, url: str, service: str, n: int
) -> list[Path]:
    """`n` configs of the billed hubproxy on database `url`, all on `port` (with n > 1 they
    share it through SO_REUSEPORT), each with its own instance id and journal."""
    reuse = "true" if n > 1 else "false"
    return [
        hub.write_config(
            folder,
            port,
            upstream_url,
            extra=billing.EXTRA,
            name=f"-{service}-{i}",
            server=f'instance = "{service}-{i}"\nreuse_port = {reuse}\n',
            database_url=url,
        )
        for i in range(n)
    ]


def wait_instances(url: str, prefix: str, n: int, timeout_s: float = 30.0) -> None:
    """Until `n` instances named `prefix`-* have written their heartbeat (they share one port,
    so /health alone cannot tell them apart)."""

    async def count() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            found: int = await conn.fetchval(
                "SELECT count(*) FROM instances WHERE id LIKE $1", prefix + "-%"
            )
            return found
        finally:
            await conn.close()

    deadline = time.monotonic() + timeout_s
    while asyncio.run(count()) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{prefix}: fewer than {n} instances came up in {timeout_s:.0f} s")
        time.sleep(0.2)


def settle(urls: list[str]) -> None:
    """VACUUM and CHECKPOINT every database: the cleanup and the flush of the writes of the
    round just measured happen now, not as background work during the next target's round
    (on 2 cores it took up to half of the next round's throughput)."""

    async def run() -> None:
        for url in urls:
            conn = await asyncpg.connect(url, timeout=10)
            try:
                await conn.execute("VACUUM")
                await conn.execute("CHECKPOINT")
            finally:
                await conn.close()

    asyncio.run(run())
