"""The journal: records a client was told about, durable before their commit, replayed once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hubproxy.config import DatabaseSettings
from hubproxy.store import db, journal, ledger
from hubproxy.store.migrate import migrate
from hubproxy.store.writer import Writer


def database(tmp_path: Path) -> tuple[DatabaseSettings, Path]:
    settings = DatabaseSettings(path=tmp_path / "hub.db")
    conn = db.connect(settings)
    migrate(conn)
    conn.execute("INSERT INTO users (name, role, created_at) VALUES ('alice', 'member', 0)")
    conn.close()
    return settings, journal.path_for(settings.path)


def debits(settings: DatabaseSettings) -> list[tuple[str, int]]:
    conn = db.connect(settings)
    try:
        sql = "SELECT call_id, amount FROM credit_ledger WHERE kind = 'debit' ORDER BY id"
        return [tuple(r) for r in conn.execute(sql)]  # type: ignore[misc]
    finally:
        conn.close()


async def test_a_record_is_in_the_journal_at_once_and_in_the_database_after_its_group(
    tmp_path: Path,
) -> None:
    settings, path = database(tmp_path)
    pending = journal.Journal(path)
    writer = Writer(db.connect(settings), journal=pending)
    writer.start()
    try:
        done = writer.record(ledger.debit(1, "call-1", 5, "test"))
        assert done.done()  # the caller goes on at once: the journal made it durable
        assert path.stat().st_size > 0 and pending.pending == 1
        assert debits(settings) == []  # not committed yet: it lingers for its group
        for _ in range(100):  # bounded: the group commits within a few milliseconds
            if debits(settings):
                break
            await asyncio.sleep(0.005)
        assert debits(settings) == [("call-1", -5)]
        assert pending.pending == 0 and path.stat().st_size == 0  # emptied once committed
    finally:
        await writer.close()
        pending.close()


async def test_replay_applies_what_was_not_committed_once_and_skips_a_torn_line(
    tmp_path: Path,
) -> None:
    settings, path = database(tmp_path)
    pending = journal.Journal(path)
    pending.append([ledger.debit(1, "call-1", 5, "test")])  # committed before the crash...
    pending.append([ledger.debit(1, "call-2", 7, "test")])  # ...and this one was not
    pending.close()
    conn = db.connect(settings)
    conn.execute("BEGIN")
    sql, params = ledger.debit(1, "call-1", 5, "test")
    conn.execute(sql, params)
    conn.execute("COMMIT")
    with path.open("ab") as f:
        f.write(b'[["INSERT INTO credit_ledger')  # the process died writing this line
    assert journal.replay(conn, path) == 2  # both read back, the torn line skipped
    assert debits(settings) == [("call-1", -5), ("call-2", -7)]  # each once
    assert path.stat().st_size == 0
    assert journal.replay(conn, path) == 0  # a second start has nothing left to do
    conn.close()


async def test_without_a_journal_record_is_a_commit(tmp_path: Path) -> None:
    settings, _ = database(tmp_path)
    writer = Writer(db.connect(settings))
    writer.start()
    try:
        await writer.record(ledger.debit(1, "call-1", 5, "test"))
        assert debits(settings) == [("call-1", -5)]
    finally:
        await writer.close()
