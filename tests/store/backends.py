"""One fixture, two backends: a migrated store and its writer, on SQLite (a file in
tmp_path) or on PostgreSQL (a fresh database cloned from a migrated template)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import pytest

from hubproxy.config import DatabaseSettings
from hubproxy.store import db
from hubproxy.store.migrate import migrate
from hubproxy.store.ops import Op
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.sql import to_postgres
from hubproxy.store.postgres.writer import PgWriter
from hubproxy.store.writer import Writer
from tests.pg import Server

_TEMPLATE = "hubproxy_template"
_numbers = itertools.count(1)


class AnyWriter(Protocol):
    error: Any
    died: asyncio.Event

    def submit(self, *ops: Op, key: str | None = None) -> None: ...
    def commit(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]: ...
    def record(self, *ops: Op, replaces: str | None = None) -> asyncio.Future[None]: ...
    def add_source(self, drain: Any) -> None: ...
    async def flush(self) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Store:
    name: str
    writer: AnyWriter
    _sqlite: sqlite3.Connection | None = None
    _pg: asyncpg.Connection | None = None
    url: str = ""  # PostgreSQL's database
    path: str = ""  # SQLite's file

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read through a connection of its own, as another reader would (`?` placeholders)."""
        if self._sqlite is not None:
            return [tuple(r) for r in self._sqlite.execute(sql, params).fetchall()]
        assert self._pg is not None
        return [tuple(r) for r in await self._pg.fetch(to_postgres(sql), *params)]

    async def value(self, sql: str, *params: Any) -> Any:
        rows = await self.rows(sql, *params)
        return rows[0][0] if rows else None


@pytest.fixture(scope="session")
def pg_template(pg_server: Server) -> Iterator[Server]:
    """A database migrated once; each test's database is a copy of it (… TEMPLATE)."""

    async def build() -> None:
        admin = await schema.connect(pg_server.url("postgres"))
        try:
            await admin.execute(f"CREATE DATABASE {_TEMPLATE}")
        finally:
            await admin.close()
        conn = await schema.connect(pg_server.url(_TEMPLATE))
        try:
            await schema.migrate(conn)
        finally:
            await conn.close()

    # A thread of its own: the fixture may be first asked for inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build()).result(timeout=60)
    yield pg_server


async def fresh_pg_database(server: Server) -> str:
    name = f"hubproxy_t{next(_numbers)}"
    admin = await schema.connect(server.url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
    finally:
        await admin.close()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        settings = DatabaseSettings(path=tmp_path / "hub.db")
        conn = db.connect(settings)
        migrate(conn)
        sqlite_writer = Writer(conn)
        sqlite_writer.start()
        reader = db.connect(settings)
        yield Store("sqlite", sqlite_writer, _sqlite=reader, path=str(settings.path))
        await sqlite_writer.close()
        reader.close()
        return
    server: Server = request.getfixturevalue("pg_template")
    url = await fresh_pg_database(server)
    pg_writer = PgWriter(await schema.connect(url))
    pg_writer.start()
    pg_reader = await schema.connect(url)
    yield Store("postgres", pg_writer, _pg=pg_reader, url=url)
    if pg_writer.error is None:
        await pg_writer.close()
    await pg_reader.close()
