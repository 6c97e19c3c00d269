"""Backups: a consistent copy of the live database (SQLite's online backup API), its restore,
and the lock that tells a restore a server is running.

A server holds a shared lock on `<database>.lock` while it runs; `restore` takes it
exclusively, without waiting, so it refuses while any server has the database open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from hubproxy.config import DatabaseSettings

PAGES = 1024  # pages copied per step: the writer waits at most one step's worth


class Locked(Exception):
    """A server has the database open."""


class Corrupt(Exception):
    """The file fails SQLite's integrity check."""


def lock_path(settings: DatabaseSettings) -> Path:
    return settings.path.with_name(settings.path.name + ".lock")


@contextlib.contextmanager
def serving(settings: DatabaseSettings) -> Iterator[None]:
    """Held by a running server: restore refuses while it is."""
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def backup(settings: DatabaseSettings, dest: Path) -> int:
    """Copy the database to `dest`, consistent as of one moment, while it is in use; checked
    with PRAGMA integrity_check before it takes `dest`'s name. Returns its size in bytes."""
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(settings.path, timeout=settings.busy_timeout_ms / 1000)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out, pages=PAGES)
            out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            check(out)
        finally:
            out.close()
    finally:
        src.close()
    os.replace(tmp, dest)
    return dest.stat().st_size


def restore(settings: DatabaseSettings, source: Path) -> None:
    """Put a backup back in place of the database; only with no server running."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such backup file")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        check(src)
        path = lock_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Locked(f"{settings.path} is in use by a running server") from None
            dst = sqlite3.connect(settings.path, timeout=settings.busy_timeout_ms / 1000)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode = WAL")
                check(dst)
            finally:
                dst.close()
        finally:
            os.close(fd)
    finally:
        src.close()


def check(conn: sqlite3.Connection) -> None:
    result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise Corrupt("; ".join(str(r) for r in result[:5]))
