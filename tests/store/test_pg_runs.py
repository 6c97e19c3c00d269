"""The PostgreSQL writer's runs: a batch of settled calls goes as one executemany per
statement, each unit's own order kept; anything else keeps its place."""

from __future__ import annotations

from hubproxy.store import calls, ledger
from hubproxy.store.postgres import leases
from hubproxy.store.postgres.writer import runs


def settled(call: str) -> list[tuple[str, tuple[str]]]:
    return [(calls.FINISH, (call,)), (leases.CONSUME, (call,)), (ledger.DEBIT, (call,))]


def test_settled_calls_go_as_one_run_per_statement_in_each_units_order() -> None:
    batch = [settled("a"), settled("b"), settled("c")]
    assert [(sql, [p[0] for p in params]) for sql, params in runs(batch)] == [
        (calls.FINISH, ["a", "b", "c"]),
        (leases.CONSUME, ["a", "b", "c"]),
        (ledger.DEBIT, ["a", "b", "c"]),
    ]


def test_another_statement_stays_between_the_groups_around_it() -> None:
    grant = ("INSERT INTO credit_ledger (x) VALUES (?)", ("g",))
    batch = [settled("a"), [grant], settled("b")]
    got = [(sql, [p[0] for p in params]) for sql, params in runs(batch)]
    assert got == [
        (calls.FINISH, ["a"]),
        (leases.CONSUME, ["a"]),
        (ledger.DEBIT, ["a"]),
        (grant[0], ["g"]),
        (calls.FINISH, ["b"]),
        (leases.CONSUME, ["b"]),
        (ledger.DEBIT, ["b"]),
    ]


def test_units_in_another_order_are_not_grouped() -> None:
    other = [(ledger.DEBIT, ("b",)), (calls.FINISH, ("b",))]
    batch = [settled("a"), other]
    got = [(sql, [p[0] for p in params]) for sql, params in runs(batch)]
    assert got == [
        (calls.FINISH, ["a"]),
        (leases.CONSUME, ["a"]),
        (ledger.DEBIT, ["a", "b"]),
        (calls.FINISH, ["b"]),
    ]
