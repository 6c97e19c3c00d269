"""Migration 0010 rebuilds model_calls: rows and indexes survive, image/audio types are admitted."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from hubproxy.store.migrate import migrate, migrations_dir


def test_model_calls_rebuilt_with_rows_indexes_and_media_types(tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for path in migrations_dir("sqlite").iterdir():
        if path.suffix == ".sql" and path.name < "0010":
            shutil.copy(path, before / path.name)
    conn = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    migrate(conn, before)
    conn.execute(
        "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
        "stream, status, prompt_tokens, completion_tokens, total_tokens, created_at, "
        "finished_at, credits, params, attempts) VALUES ('c1', 'r1', 7, 3, 'up', 'm', 'chat', "
        "1, 'success', 5, 6, 11, 1000, 2000, 42, '{\"images\":1}', 2)"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO model_calls (id, request_id, provider, model, type, status, created_at)"
            " VALUES ('c2', 'r2', 'up', 'm', 'image', 'success', 1)"
        )
    columns = [r[1] for r in conn.execute("PRAGMA table_info(model_calls)")]
    through = tmp_path / "through"  # this migration and those before it, not later ones
    shutil.copytree(before, through)
    shutil.copy(migrations_dir("sqlite") / "0010_media_calls.sql", through)
    assert migrate(conn, through) == ["0010_media_calls.sql"]
    after = [r[1] for r in conn.execute("PRAGMA table_info(model_calls)")]
    assert after == [*columns, "app_id", "app_user", "billing"]
    row = conn.execute("SELECT * FROM model_calls").fetchone()
    assert row == (
        "c1", "r1", 7, 3, "up", "m", "chat", 1, "success", 5, 6, 11, 0, None, None, None,
        None, None, 1000, 2000, 42, '{"images":1}', 2, None, None, "credits",
    )  # fmt: skip
    for kind in ("image", "audio"):
        conn.execute(
            "INSERT INTO model_calls (id, request_id, provider, model, type, status, created_at)"
            " VALUES (?, 'r', 'up', 'm', ?, 'success', 1)",
            (kind, kind),
        )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO model_calls (id, request_id, provider, model, type, status, created_at)"
            " VALUES ('v', 'r', 'up', 'm', 'video', 'success', 1)"
        )
    indexes = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'model_calls'"
            " AND sql IS NOT NULL"
        )
    }
    assert set(indexes) == {"model_calls_processing", "model_calls_user_id"}
    assert "WHERE status = 'processing'" in indexes["model_calls_processing"]
    assert "apps" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "user_id" in [r[1] for r in conn.execute("PRAGMA table_info(apps)")]
