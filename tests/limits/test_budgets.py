"""limits/budgets: the month a debit counts in, from the calendar, whatever was asked before
(the bounds of the last month asked about are kept)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hubproxy.limits.budgets import Budgets, month_start, period_end


def ms(*when: int) -> int:
    return int(datetime(*when, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [
        (ms(2026, 11, 29, 13, 50), ms(2026, 11, 1), ms(2026, 12, 1)),
        (ms(2026, 12, 1) - 1, ms(2026, 11, 1), ms(2026, 12, 1)),
        (ms(2026, 12, 1), ms(2026, 12, 1), ms(2027, 1, 1)),
        (ms(2026, 12, 31, 23, 59, 59), ms(2026, 12, 1), ms(2027, 1, 1)),
        (ms(2027, 1, 1), ms(2027, 1, 1), ms(2027, 2, 1)),
        (ms(2028, 2, 29, 12), ms(2028, 2, 1), ms(2028, 3, 1)),
        (ms(2026, 11, 1), ms(2026, 11, 1), ms(2026, 12, 1)),
    ],
)
def test_the_month_of_an_instant_in_any_order(at: int, start: int, end: int) -> None:
    for before in (at - 40 * 86_400_000, at + 40 * 86_400_000, at, at - 1, at + 1):
        month_start(before)  # whatever month was asked about last
        assert month_start(at) == start
        assert period_end("month", at) == end


def test_a_debit_of_a_new_month_starts_its_count_and_an_old_months_changes_nothing() -> None:
    budgets = Budgets("test")
    budgets.add(7, ms(2026, 11, 30, 23, 59), 5)
    budgets.add(7, ms(2026, 12, 1), 3)
    now = ms(2026, 12, 2)
    assert budgets.spent(7, "month", now) == 3
    budgets.add(7, ms(2026, 11, 15), 100)  # settled late, created last month: not this one's
    assert budgets.spent(7, "month", now) == 3
    assert budgets.spent(7, "month", ms(2026, 11, 30)) == 0  # that month is over here
