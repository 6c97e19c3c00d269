"""The writer: a bad write fails alone, checkpoints run off it, sources drain on time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hubproxy.config import DatabaseSettings
from hubproxy.store import db
from hubproxy.store.writer import Writer, WriterDead


async def test_a_value_sqlite_cannot_hold_fails_alone(tmp_path: Path) -> None:
    conn = db.connect(DatabaseSettings(path=tmp_path / "w.db"))
    conn.execute("CREATE TABLE t (x INTEGER)")
    writer = Writer(conn)
    writer.start()
    good = writer.commit(("INSERT INTO t VALUES (?)", (1,)))
    bad = writer.commit(("INSERT INTO t VALUES (?)", (2**70,)))  # OverflowError in sqlite3
    await good
    with pytest.raises(OverflowError):
        await bad
    await writer.commit(("INSERT INTO t VALUES (?)", (3,)))  # the writer is still alive
    await writer.close()
    check = db.connect(DatabaseSettings(path=tmp_path / "w.db"))
    assert [r[0] for r in check.execute("SELECT x FROM t ORDER BY x")] == [1, 3]


async def test_checkpoints_run_off_the_writer(tmp_path: Path) -> None:
    from hubproxy import tasks

    settings = DatabaseSettings(path=tmp_path / "c.db")
    conn = db.connect(settings)
    conn.execute("CREATE TABLE t (x INTEGER)")
    writer = Writer(conn)
    writer.start()
    await writer.commit(*[("INSERT INTO t VALUES (?)", (i,)) for i in range(5000)])
    before = settings.path.stat().st_size  # the rows are still in the WAL only
    checkpointer = tasks.Checkpointer(db.connect(settings))
    await checkpointer()
    assert settings.path.stat().st_size > before + 4096, "the checkpoint copied the WAL back"
    await checkpointer.close()
    await writer.close()


async def test_sources_are_drained_soon_after_a_lone_commit(tmp_path: Path) -> None:
    conn = db.connect(DatabaseSettings(path=tmp_path / "s.db"))
    conn.execute("CREATE TABLE t (x INTEGER)")
    writer = Writer(conn, linger_s=0.01)
    writer.start()
    gathered: list[tuple[str, tuple[int]]] = []
    writer.add_source(lambda: [gathered.pop() for _ in range(len(gathered))])
    await writer.commit()  # drains (nothing yet) and marks the time
    gathered.append(("INSERT INTO t VALUES (?)", (7,)))
    await asyncio.sleep(0.003)  # past the group window (inline again), inside the linger
    await writer.commit(("INSERT INTO t VALUES (?)", (1,)))  # too soon to drain: owed
    check = db.connect(DatabaseSettings(path=tmp_path / "s.db"))
    for _ in range(100):  # bounded: the linger timer must come for the source
        if check.execute("SELECT count(*) FROM t WHERE x = 7").fetchone()[0]:
            break
        await asyncio.sleep(0.01)
    assert [r[0] for r in check.execute("SELECT x FROM t ORDER BY x")] == [1, 7]
    await writer.close()


async def test_a_keyed_write_waits_for_its_replacement(tmp_path: Path) -> None:
    settings = DatabaseSettings(path=tmp_path / "k.db")
    conn = db.connect(settings)
    conn.execute("CREATE TABLE t (x TEXT)")
    writer = Writer(conn, keyed_s=0.05)
    writer.start()
    check = db.connect(settings)

    def rows() -> list[str]:
        return [r[0] for r in check.execute("SELECT x FROM t ORDER BY x")]

    writer.submit(("INSERT INTO t VALUES ('a-start')", ()), key="a")
    writer.submit(("INSERT INTO t VALUES ('b-start')", ()), key="b")
    await writer.commit(("INSERT INTO t VALUES ('other')", ()))  # commits, leaves the young keys
    assert rows() == ["other"]
    await writer.commit(("INSERT INTO t VALUES ('a-finish')", ()), replaces="a")
    for _ in range(100):  # bounded: b's start lands once it is keyed_s old
        if "b-start" in rows():
            break
        await asyncio.sleep(0.01)
    assert rows() == ["a-finish", "b-start", "other"], "a's start was replaced, never written"
    writer.submit(("INSERT INTO t VALUES ('c-start')", ()), key="c")
    await writer.flush()  # a flush takes keyed writes at once
    assert "c-start" in rows()
    await writer.close()


async def test_a_source_that_raises_fails_every_pending_write_and_kills_the_writer(
    tmp_path: Path,
) -> None:
    conn = db.connect(DatabaseSettings(path=tmp_path / "d.db"))
    conn.execute("CREATE TABLE t (x INTEGER)")
    writer = Writer(conn)

    def broken() -> list[tuple[str, tuple[int]]]:
        raise ValueError("a source broke")

    writer.add_source(broken)
    writer.start()
    # Queued before the task first runs: it takes them all, then the source raises.
    pending = [writer.commit(("INSERT INTO t VALUES (?)", (i,))) for i in range(3)]
    done, _ = await asyncio.wait(pending, timeout=2)  # bounded: a hang fails here
    assert len(done) == 3, "every pending write must resolve"
    for fut in pending:
        with pytest.raises(WriterDead, match="a source broke"):
            fut.result()
    assert writer.died.is_set() and writer.error is not None
    with pytest.raises(WriterDead):  # at once, not a future that never resolves
        writer.commit(("INSERT INTO t VALUES (?)", (9,)))
    with pytest.raises(WriterDead):
        writer.submit(("INSERT INTO t VALUES (?)", (9,)))
    with pytest.raises(WriterDead):
        await asyncio.wait_for(writer.flush(), 2)
    await asyncio.wait_for(writer.close(), 2)


async def test_a_source_that_raises_inline_fails_that_write_and_the_queued_ones(
    tmp_path: Path,
) -> None:
    conn = db.connect(DatabaseSettings(path=tmp_path / "i.db"))
    conn.execute("CREATE TABLE t (x INTEGER)")
    writer = Writer(conn)
    armed = False

    def source() -> list[tuple[str, tuple[int]]]:
        if armed:
            raise ValueError("a source broke")
        return []

    writer.add_source(source)
    writer.start()
    await writer.commit()  # the task now waits: the next commit runs inline, in the caller
    await asyncio.sleep(0.01)
    writer.submit(("INSERT INTO t VALUES (?)", (1,)))
    armed = True
    fut = writer.commit(("INSERT INTO t VALUES (?)", (2,)))
    await asyncio.wait([fut], timeout=2)
    assert fut.done()
    with pytest.raises(WriterDead):
        fut.result()
    assert writer.died.is_set()
    await asyncio.wait_for(writer.close(), 2)
