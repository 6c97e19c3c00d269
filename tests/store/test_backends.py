"""The store's contract, on both backends: the writer's commit/record/flush semantics, a unit
that fails alone, a call debited once, balances kept by the ledger's trigger."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import pytest

from hubproxy.config import DatabaseSettings
from hubproxy.store import accounts, calls, db, journal, ledger, usage
from hubproxy.store.postgres import schema
from hubproxy.store.postgres import writer as pg_writer
from hubproxy.store.writer import WriterDead
from tests.store.backends import Store


async def user(store: Store, name: str = "ada") -> int:
    await store.writer.commit(accounts.create_user(name, "member"))
    uid = await store.value("SELECT id FROM users WHERE name = ?", name)
    assert isinstance(uid, int)
    return uid


def start_op(
    call_id: str, user_id: int, instance: str = "host-a:8080", created_at: int = 1000
) -> tuple[str, tuple[object, ...]]:
    return calls.START, (call_id, "req", user_id, None, "up", "m", "chat", 0, None, created_at,
                         None, None, "credits", instance)  # fmt: skip


def finish_op(
    call_id: str, user_id: int, credits: int, instance: str = "host-a:8080"
) -> tuple[str, tuple[object, ...]]:
    outcome = ("success", 3, 4, 7, 0, 12, 5, 200, None, credits, None, 1, 2000)
    return calls.FINISH, (call_id, "req", user_id, None, "up", "m", "chat", 0, None, 1000,
                          None, None, "credits", instance, *outcome)  # fmt: skip


async def test_commit_resolves_once_the_rows_are_visible_to_another_reader(store: Store) -> None:
    uid = await user(store)
    await store.writer.commit(ledger.entry(uid, "grant", 5_000_000, source=""))
    assert await store.value("SELECT balance FROM credit_balances WHERE user_id = ?", uid) == (
        5_000_000
    )


async def test_a_unit_that_fails_fails_alone(store: Store) -> None:
    uid = await user(store)
    good = store.writer.commit(ledger.entry(uid, "grant", 1, source=""))
    # A grant must not be negative (a CHECK): this unit fails, in the same batch as the others.
    bad = store.writer.commit(
        ledger.entry(uid, "grant", 10, source=""), ledger.entry(uid, "grant", -5, source="")
    )
    also_good = store.writer.commit(ledger.entry(uid, "grant", 100, source=""))
    await good
    with pytest.raises(Exception, match=r"(?i)check"):
        await bad
    await also_good
    assert await store.value("SELECT balance FROM credit_balances WHERE user_id = ?", uid) == 101
    await store.writer.commit(ledger.entry(uid, "grant", 1000, source=""))  # still alive
    assert await store.value("SELECT COUNT(*) FROM credit_ledger") == 3


async def test_a_call_is_debited_once_however_often_it_is_settled(store: Store) -> None:
    uid = await user(store)
    await store.writer.commit(ledger.entry(uid, "grant", 1000, source=""))
    await store.writer.commit(ledger.debit(uid, "call-1", 300, "srv"))
    # Twice more: once alone, once twice within one batch (one executemany on PostgreSQL).
    await store.writer.commit(ledger.debit(uid, "call-1", 300, "srv"))
    await asyncio.gather(
        store.writer.commit(ledger.debit(uid, "call-1", 300, "srv")),
        store.writer.commit(ledger.debit(uid, "call-1", 300, "srv")),
    )
    debits = await store.rows("SELECT amount FROM credit_ledger WHERE kind = 'debit'")
    assert debits == [(-300,)]
    assert await store.value("SELECT balance FROM credit_balances WHERE user_id = ?", uid) == 700


async def test_balances_are_the_ledger_sums_and_the_ledger_is_append_only(store: Store) -> None:
    ada, bob = await user(store, "ada"), await user(store, "bob")
    ops = [
        ledger.entry(ada, "grant", 10_000_000, source=""),
        ledger.entry(bob, "grant", 3_000_000, source="srv"),
        ledger.debit(ada, "c1", 1_250_000, "srv"),
        ledger.debit(bob, "c2", 2_999_999, "srv"),
        ledger.entry(ada, "adjustment", -1, source=""),
        ledger.entry(bob, "refund", 7, source=""),
    ]
    await asyncio.gather(*(store.writer.commit(op) for op in ops))
    balances = await store.rows("SELECT user_id, balance FROM credit_balances ORDER BY user_id")
    sums = await store.rows(
        "SELECT user_id, SUM(amount) FROM credit_ledger GROUP BY user_id ORDER BY user_id"
    )
    assert balances == [(ada, 8_749_999), (bob, 8)]
    assert [(u, int(s)) for u, s in sums] == balances
    # The CLI's writes (source '') move the 'credits' revision, the servers' do not.
    assert await store.value("SELECT value FROM revisions WHERE name = 'credits'") == 3
    with pytest.raises(Exception, match="append-only"):
        await store.writer.commit(("UPDATE credit_ledger SET amount = 0 WHERE user_id = ?", (ada,)))
    with pytest.raises(Exception, match="append-only"):
        await store.writer.commit(("DELETE FROM credit_ledger WHERE user_id = ?", (bob,)))


async def test_a_finish_replaces_its_queued_start_and_flush_lands_submitted_writes(
    store: Store,
) -> None:
    uid = await user(store)
    store.writer.submit(start_op("c-short", uid), key="c-short")
    await store.writer.commit(finish_op("c-short", uid, 9), replaces="c-short")
    store.writer.submit(start_op("c-long", uid), key="c-long")
    store.writer.submit(ledger.entry(uid, "grant", 5, source=""))
    await store.writer.flush()  # takes keyed starts too
    rows = await store.rows("SELECT id, status, credits FROM model_calls ORDER BY id")
    assert rows == [("c-long", "processing", 0), ("c-short", "success", 9)]
    await store.writer.record(finish_op("c-long", uid, 4))  # no journal: a commit
    assert await store.value("SELECT status FROM model_calls WHERE id = 'c-long'") == "success"
    assert await store.value("SELECT balance FROM credit_balances WHERE user_id = ?", uid) == 5


async def test_sources_join_a_batch_and_close_commits_what_is_queued(store: Store) -> None:
    uid = await user(store)
    gathered = [ledger.entry(uid, "grant", 40, source="srv")]
    store.writer.add_source(lambda: [gathered.pop() for _ in range(len(gathered))])
    await store.writer.commit(ledger.entry(uid, "grant", 2, source="srv"))
    await store.writer.flush()
    assert await store.value("SELECT balance FROM credit_balances WHERE user_id = ?", uid) == 42
    store.writer.submit(ledger.entry(uid, "grant", 100, source="srv"))
    await store.writer.close()
    assert await store.value("SELECT balance FROM credit_balances WHERE user_id = ?", uid) == 142


async def test_a_source_that_raises_kills_the_writer_and_fails_every_waiter(store: Store) -> None:
    uid = await user(store)

    def broken() -> list[tuple[str, tuple[object, ...]]]:
        raise RuntimeError("source broke")

    store.writer.add_source(broken)
    with pytest.raises(WriterDead):
        await store.writer.commit(ledger.entry(uid, "grant", 1, source=""))
    await asyncio.wait_for(store.writer.died.wait(), 5)
    with pytest.raises(WriterDead):
        store.writer.submit(ledger.entry(uid, "grant", 1, source=""))
    await store.writer.close()


async def test_a_keyed_start_nobody_replaces_lands_on_its_own(store: Store) -> None:
    uid = await user(store)
    store.writer.submit(start_op("c-alone", uid), key="c-alone")
    status = None
    for _ in range(200):  # bounded: keyed_s is 50 ms, this waits up to 2 s
        status = await store.value("SELECT status FROM model_calls WHERE id = 'c-alone'")
        if status is not None:
            break
        await asyncio.sleep(0.01)
    assert status == "processing"


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
async def test_a_lost_connection_kills_the_postgres_writer_and_fails_its_waiters(
    store: Store,
) -> None:
    uid = await user(store)
    pid = store.writer._conn.get_server_pid()  # type: ignore[attr-defined]
    await store.rows("SELECT pg_terminate_backend(?)", pid)
    with pytest.raises(WriterDead):
        await store.writer.commit(ledger.entry(uid, "grant", 1, source=""))
    await asyncio.wait_for(store.writer.died.wait(), 5)
    with pytest.raises(WriterDead):
        store.writer.commit(ledger.entry(uid, "grant", 1, source=""))


async def test_rollups_drained_by_two_instances_add_up_in_one_row(store: Store) -> None:
    """Each instance drains its own sums into the same (period, bucket, …) rows: the upsert
    adds the counts and the latency histograms, bucket by bucket."""
    first, second = usage.Rollups(store.name), usage.Rollups(store.name)
    call = {"created_at": 1_000, "user_id": 1, "api_key_id": 2, "provider": "p", "model": "m",
            "prompt_tokens": 3, "completion_tokens": 4, "credits": 5, "ttfb_ms": None}  # fmt: skip
    first.add(**call, failed=False, duration_ms=10)
    second.add(**call, failed=True, duration_ms=10)
    second.add(**call, failed=False, duration_ms=1000)
    await store.writer.commit(*first.drain())
    await store.writer.commit(*second.drain())
    rows = await store.rows(
        "SELECT period, requests, errors, credits, duration_hist FROM usage_rollups ORDER BY period"
    )
    assert [r[:4] for r in rows] == [("day", 3, 1, 15), ("hour", 3, 1, 15)]
    for row in rows:
        hist = orjson.loads(row[4])
        assert len(hist) == usage.BUCKETS and sum(hist) == 3
        assert hist[usage.bucket_of(10)] == 2 and hist[usage.bucket_of(1000)] == 1


async def test_a_journal_replays_into_the_store_once(store: Store, tmp_path: Path) -> None:
    uid = await user(store)
    path = tmp_path / "hub.db.pending"
    pending = journal.Journal(path)
    pending.append([start_op("call-1", uid)])
    pending.append([finish_op("call-1", uid, 7), ledger.debit(uid, "call-1", 7, "server-x")])
    pending.close()
    with path.open("ab") as f:
        f.write(b'[["INSERT INTO')  # a torn last line: the process died writing it

    async def replay() -> int:
        if store.name == "sqlite":
            conn = db.connect(DatabaseSettings(path=Path(store.path)))
            try:
                return journal.replay(conn, path)
            finally:
                conn.close()
        conn = await schema.connect(store.url)
        try:
            return await pg_writer.replay(conn, path)
        finally:
            await conn.close()

    assert await replay() == 2
    assert path.read_bytes() == b""
    pending = journal.Journal(path)  # the same units again, as if the file had not emptied
    pending.append([finish_op("call-1", uid, 7), ledger.debit(uid, "call-1", 7, "server-x")])
    pending.close()
    await replay()
    assert await store.rows("SELECT status, credits FROM model_calls") == [("success", 7)]
    assert await store.value("SELECT sum(amount) FROM credit_ledger WHERE kind = 'debit'") == -7


async def test_a_broken_constraint_is_an_integrity_error_on_both(store: Store) -> None:
    """What callers catch to answer 409 (the catalogue's admin API): one exception type."""
    await user(store, "ada")
    with pytest.raises(sqlite3.IntegrityError, match=r"(?i)unique"):
        await store.writer.commit(accounts.create_user("ada", "member"))
    await user(store, "bea")  # the writer lives on
