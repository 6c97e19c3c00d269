"""The PostgreSQL schema matches SQLite's, column for column; its migrations apply once; the
statements written for SQLite are numbered for PostgreSQL; no PostgreSQL fails the run in CI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hubproxy.config import DatabaseSettings
from hubproxy.store import db
from hubproxy.store.migrate import available, migrate, migrations_dir
from hubproxy.store.postgres import schema
from hubproxy.store.postgres.sql import to_postgres
from tests import pg
from tests.store.backends import Store


def sqlite_columns(tmp_path: Path) -> dict[str, list[str]]:
    conn = db.connect(DatabaseSettings(path=tmp_path / "s.db"))
    migrate(conn)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    conn.close()
    return out


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_postgres_has_every_sqlite_table_and_column_in_order(
    store: Store, tmp_path: Path
) -> None:
    rows = await store.rows(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    )
    postgres: dict[str, list[str]] = {}
    for table, column in rows:
        postgres.setdefault(table, []).append(column)
    assert postgres == sqlite_columns(tmp_path)


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_postgres_migrations_apply_once(store: Store) -> None:
    conn = await schema.connect(store.url)
    try:
        assert await schema.migrate(conn) == []  # the template applied them already
        names = await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")
        assert [r[0] for r in names] == [p.name for p in available(migrations_dir("postgres"))]
        assert "0003_leases.sql" in [r[0] for r in names]
        revisions = await conn.fetch("SELECT name, value FROM revisions ORDER BY name")
        assert {r[0] for r in revisions} == {"apps", "auth", "catalog", "credits", "rates"}
    finally:
        await conn.close()


def test_placeholders_are_numbered_outside_quotes_and_comments() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE a = ? AND b LIKE 'it''s ?' -- why?\n AND c = ?"
    assert to_postgres(sql) == (
        "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b LIKE 'it''s ?' -- why?\n AND c = $2"
    )


def test_without_postgresql_ci_fails_and_a_developer_is_told_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is needed"):
        pg._unavailable("initdb was not found")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        pg._unavailable("initdb was not found")


def test_sqlite_is_untouched_by_the_move(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate(conn)[-1] == available(migrations_dir("sqlite"))[-1].name
