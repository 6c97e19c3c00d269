"""What every command shares: the error it raises, the settings and database it opens, tables."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from hubproxy import config
from hubproxy.config import Settings
from hubproxy.store import db
from hubproxy.store.migrate import migrate


class UsageError(Exception):
    """A command given something it cannot act on; the message says what to do instead."""


def settings_of(args: argparse.Namespace, *, secrets: bool = False) -> Settings:
    return config.load(config.locate(args.config), secrets=secrets)


def database(args: argparse.Namespace) -> sqlite3.Connection:
    conn = db.connect(settings_of(args).database)
    migrate(conn)
    return conn


def timestamp(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
