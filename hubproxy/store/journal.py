"""The journal: writes a client was told are recorded, appended to a file before their commit.

Releasing a call's final bytes waits for its record to be durable. A SQLite transaction per
call is the dearest thing on the request path, so the record is made durable by one append
to this file instead (an `os.write` of a JSON line: it survives the process being killed,
like a WAL commit without fsync), and the writer commits it to the database with the next
group of writes. Once everything journaled has been committed, the file is emptied. At
start, whatever the file still holds is applied, unit by unit: a unit that was committed
already fails on its unique debit or finds its row finished, and changes nothing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import orjson
import structlog

from hubproxy.store.ops import Op, apply

log = structlog.get_logger("hubproxy.store")


def path_for(database: Path) -> Path:
    """The journal of a database file: beside it, named after it."""
    return database.with_name(database.name + ".pending")


class Journal:
    """An append-only file of units of writes (one JSON line each)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.pending = 0  # units appended and not yet committed to the database

    def append(self, ops: Sequence[Op]) -> None:
        """Make `ops` durable (against the process dying) before they are committed."""
        line = orjson.dumps(ops) + b"\n"
        written = os.write(self._fd, line)
        if written != len(line):  # a regular file takes the whole line, or raises
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
        self.pending += 1

    def committed(self, units: int) -> None:
        """`units` journaled units are in the database now; when none is left, the file is
        emptied (one ftruncate; appends that come later start it again)."""
        self.pending -= units
        if self.pending == 0:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        os.close(self._fd)


def units(path: Path) -> list[list[Op]]:
    """The units a journal left by a previous run holds, in order. A torn last line (the
    process died while writing it, before its client was answered) is skipped."""
    if not path.exists():
        return []
    found: list[list[Op]] = []
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            try:
                found.append([(sql, params) for sql, params in orjson.loads(line)])
            except (orjson.JSONDecodeError, TypeError, ValueError):
                log.warning("journal_line_unreadable", path=str(path), line=number)
    return found


def replayed(path: Path, applied: int) -> None:
    """Empty the journal once its units are in the database (or were there already)."""
    if path.exists():
        os.truncate(path, 0)
    if applied:
        log.info("journal_replayed", path=str(path), units=applied)


def replay(conn: sqlite3.Connection, path: Path) -> int:
    """Apply what a journal left by a previous run holds (into SQLite), then empty it;
    returns how many units were read back. Each unit commits on its own, and applying one
    already in the database changes nothing (a finished row is not rewritten, a debit exists
    once per call). store/postgres/writer.replay is PostgreSQL's."""
    applied = 0
    for ops in units(path):
        try:
            apply(conn, ops)
            applied += 1
        except sqlite3.IntegrityError:
            pass  # committed before the crash: its debit is there already
    replayed(path, applied)
    return applied
