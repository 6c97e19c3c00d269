"""Schema migrations: migrations/<dialect>/NNNN_name.sql, applied in order, one transaction each."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """A migration failed; the database is as it was before that migration."""


def migrations_dir(dialect: str = "sqlite") -> Path:
    """A dialect's folder ('sqlite' or 'postgres'): the packaged copy in an installed wheel,
    else the repository's migrations/<dialect>/."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    base = packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "migrations"
    return base / dialect


def available(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if _NAME.match(p.name))
    versions = [p.name[:4] for p in files]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a number: {versions}")
    return files


def migrate(conn: sqlite3.Connection, directory: Path | None = None) -> list[str]:
    """Apply what is not yet applied; return the names applied. Re-running is a no-op.

    `conn` must be in autocommit mode (isolation_level=None): each migration and its record in
    schema_migrations commit together, or not at all. BEGIN IMMEDIATE serialises two
    processes that start at once; the second sees the first's record and skips.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version TEXT PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    applied: list[str] = []
    for path in available(directory or migrations_dir()):
        version = path.name[:4]
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone()
            if done:
                conn.execute("COMMIT")
                continue
            for statement in _statements(path.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, path.name, int(time.time() * 1000)),
            )
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"{path.name} failed and was rolled back: {exc}") from exc
        applied.append(path.name)
    return applied


def _statements(script: str) -> list[str]:
    """Split a script into statements (triggers' inner semicolons included) without
    executescript, which would commit the transaction we are in."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                out.append(pending)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise MigrationError(f"incomplete statement at the end: {pending.strip()[:80]!r}")
    return out


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())
