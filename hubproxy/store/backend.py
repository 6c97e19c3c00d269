"""The backend choice, in one place: SQLite at `[database] path`, or PostgreSQL at
`[database] url`. `open_store` migrates, replays this instance's journal into the database,
and returns the writer, the reader, and what else differs, so that the server has one code
path for both.

Either way the journal (store/journal.py) is a local file, `<path>.pending`, per instance: on
PostgreSQL `path` names no database, only where this instance keeps its journal, and two
instances must not share one (the second to start refuses).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncpg

from hubproxy.config import DatabaseSettings
from hubproxy.store import backup, db, journal
from hubproxy.store.migrate import MigrationError, migrate
from hubproxy.store.ops import StoreWriter
from hubproxy.store.postgres import schema
from hubproxy.store.postgres import writer as pg_writer
from hubproxy.store.postgres.blocking import BlockingConnection
from hubproxy.store.postgres.reader import PgReader, create_pool
from hubproxy.store.reader import Reader
from hubproxy.store.writer import Writer


class StoreUnavailable(Exception):
    """The configured database cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Store:
    """An open store. `dialect` is "sqlite" or "postgres"; on PostgreSQL `url` is its DSN
    (a secret: never log it) and `pool` the reader's asyncpg pool, for work that needs
    connections of its own (heartbeats, leases, LISTEN)."""

    dialect: str
    writer: StoreWriter
    reader: Reader
    url: str | None = None
    pool: asyncpg.Pool | None = None


async def open_store(settings: DatabaseSettings, opened: AsyncExitStack) -> Store:
    """Open, migrate and replay; what is opened is closed by `opened`, in reverse (the
    reader, then the writer after its last commit, then the journal it has emptied)."""
    if settings.url is None:
        return await _open_sqlite(settings, opened)
    return await _open_postgres(settings.url.reveal(), journal.path_for(settings.path), opened)


async def _open_sqlite(settings: DatabaseSettings, opened: AsyncExitStack) -> Store:
    journal_path = journal.path_for(settings.path)
    opened.enter_context(backup.serving(settings))  # `hubproxy restore` waits
    conn = db.connect(settings)
    migrate(conn)
    # Records a client was told about, journaled but not committed when the last run died.
    journal.replay(conn, journal_path)
    pending = journal.Journal(journal_path)
    opened.callback(pending.close)
    writer = Writer(conn, journal=pending)
    writer.start()
    opened.push_async_callback(writer.close)
    reader = await db.open_reader(settings)
    opened.push_async_callback(reader.close)
    return Store("sqlite", writer, reader)


async def _open_postgres(url: str, journal_path: Path, opened: AsyncExitStack) -> Store:
    opened.enter_context(_own_journal(journal_path))
    try:
        conn = await schema.connect(url)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise StoreUnavailable(f"cannot connect to [database] url: {exc}") from exc
    try:
        await schema.migrate(conn)
        await pg_writer.replay(conn, journal_path)
    except BaseException:
        await conn.close()
        raise
    pending = journal.Journal(journal_path)
    opened.callback(pending.close)
    writer = pg_writer.PgWriter(conn, journal=pending)
    writer.start()
    opened.push_async_callback(writer.close)
    pool = await create_pool(url)
    reader = PgReader(pool)
    opened.push_async_callback(reader.close)
    return Store("postgres", writer, reader, url=url, pool=pool)


def connect_blocking(settings: DatabaseSettings) -> tuple[sqlite3.Connection, list[str]]:
    """A migrated blocking connection for the command line, and the migrations it applied.
    On PostgreSQL it is a BlockingConnection: it does what the CLI asks of a
    sqlite3.Connection (execute, fetch, BEGIN/COMMIT, IntegrityError), and is typed as one so
    that the store's blocking functions serve both backends."""
    if settings.url is None:
        conn = db.connect(settings)
        return conn, migrate(conn)
    try:
        pg = BlockingConnection(settings.url.reveal())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise MigrationError(f"cannot connect to [database] url: {exc}") from exc
    try:
        applied = pg.run(schema.migrate)
    except BaseException:
        pg.close()
        raise
    return cast(sqlite3.Connection, pg), applied


async def open_reader(settings: DatabaseSettings) -> Reader:
    """A reader of its own (the CLI's reports): aiosqlite, or a small asyncpg pool."""
    if settings.url is None:
        return await db.open_reader(settings)
    return PgReader(await create_pool(settings.url.reveal(), max_size=1))


@contextlib.contextmanager
def _own_journal(path: Path) -> Iterator[None]:
    """An exclusive lock on `<journal>.lock` while this instance runs: two instances sharing
    one journal would replay and truncate each other's records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreUnavailable(
                f"another hubproxy instance uses the journal {path}: give each instance its "
                "own [database] path (or HUBPROXY_DB), beside which it keeps its journal"
            ) from None
        yield
    finally:
        os.close(fd)
