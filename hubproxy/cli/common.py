"""What every command shares: the error it raises, the settings and database it opens, tables."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from hubproxy import config
from hubproxy.config import Settings
from hubproxy.store import backend


class UsageError(Exception):
    """A command given something it cannot act on; the message says what to do instead."""


def settings_of(args: argparse.Namespace, *, secrets: bool = False) -> Settings:
    return config.load(config.locate(args.config), secrets=secrets)


def database(args: argparse.Namespace) -> sqlite3.Connection:
    """The configured database (SQLite, or PostgreSQL through a blocking connection with the
    same surface: store/backend.connect_blocking), migrated."""
    conn, _ = backend.connect_blocking(settings_of(args).database)
    return conn


def sqlite_only(args: argparse.Namespace, command: str) -> None:
    """Refuse a command that exists for SQLite's file only."""
    if settings_of(args).database.url is not None:
        raise UsageError(
            f"`hubproxy {command}` copies SQLite's database file; on PostgreSQL ([database] "
            "url) use pg_dump and pg_restore (or your provider's snapshots) instead"
        )


def timestamp(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
