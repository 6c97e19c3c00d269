"""Each key's spend in the current UTC day and month, and what its calls in flight hold.

Spend is counted by when a call was created (as the start-up load sums it from the call
records), so a call that settles after midnight counts in the day it began, and nothing it
spent is counted in the new day. This process adds its own calls' debits as they settle;
`follow` adds the debits other processes wrote (tailing the ledger), so that every server
sees a key's whole spend within the reload interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from hubproxy.store.follow import Cursor

DAY_MS = 86_400_000


def day_start(ms: int) -> int:
    return ms - ms % DAY_MS


class _Month:
    """The bounds [start, end) of the last month asked about: every settled call asks, and
    nearly always about the current month, which then costs no calendar arithmetic."""

    __slots__ = ("end", "start")

    def __init__(self) -> None:
        self.start = self.end = 0

    def bounds(self, ms: int) -> tuple[int, int]:
        if not self.start <= ms < self.end:
            d = datetime.fromtimestamp(ms / 1000, UTC)
            year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
            self.start = int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1000)
            self.end = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
        return self.start, self.end


_month = _Month()


def month_start(ms: int) -> int:
    return _month.bounds(ms)[0]


def period_end(period: str, ms: int) -> int:
    """When the period (a 'day' or a 'month') that holds `ms` ends: the cap resets then."""
    if period == "day":
        return day_start(ms) + DAY_MS
    return _month.bounds(ms)[1]


class Spend:
    __slots__ = ("day", "day_spent", "held", "month", "month_spent")

    def __init__(self) -> None:
        self.day = 0  # the start of the day that day_spent is for
        self.day_spent = 0
        self.month = 0
        self.month_spent = 0
        self.held = 0  # micro-credits held by this key's calls in flight


class Budgets:
    def __init__(self, source: str) -> None:
        self.source = source  # the ledger rows this process writes: not followed
        self.cursor = Cursor()  # where `follow` has read the ledger up to (store/follow.py)
        self._keys: dict[int, Spend] = {}

    def load(self, spend: dict[int, tuple[int, int]], now: int, cursor: Cursor) -> None:
        """Each key's (day, month) spend as of `now`, and the ledger cursor it is read at."""
        day, month = day_start(now), month_start(now)
        for key_id, (day_spent, month_spent) in spend.items():
            s = self._spend(key_id)
            s.day, s.day_spent, s.month, s.month_spent = day, day_spent, month, month_spent
        self.cursor = cursor

    def follow(self, debits: Iterable[tuple[int, int, int]], cursor: Cursor) -> None:
        """Debits other processes wrote past `self.cursor`: (key id, the call's created_at,
        credits), and the cursor after them."""
        for key_id, created_at, credits in debits:
            self.add(key_id, created_at, credits)
        self.cursor = cursor

    def spent(self, key_id: int, period: str, now: int) -> int:
        """What the key spent in the period that holds `now` (0 in a new one)."""
        s = self._keys.get(key_id)
        if s is None:
            return 0
        if period == "day":
            return s.day_spent if s.day == day_start(now) else 0
        return s.month_spent if s.month == month_start(now) else 0

    def held(self, key_id: int) -> int:
        s = self._keys.get(key_id)
        return 0 if s is None else s.held

    def hold(self, key_id: int, amount: int) -> None:
        self._spend(key_id).held += amount

    def release(self, key_id: int, amount: int) -> None:
        if amount:
            self._spend(key_id).held -= amount

    def add(self, key_id: int, created_at: int, credits: int) -> None:
        """Count a debit in the day and month of the call that made it; a call of a period
        that has passed changes nothing."""
        if not credits:
            return
        s = self._spend(key_id)
        day = day_start(created_at)
        if day > s.day:
            s.day, s.day_spent = day, 0
        if day == s.day:
            s.day_spent += credits
        month = month_start(created_at)
        if month > s.month:
            s.month, s.month_spent = month, 0
        if month == s.month:
            s.month_spent += credits

    def _spend(self, key_id: int) -> Spend:
        s = self._keys.get(key_id)
        if s is None:
            s = self._keys[key_id] = Spend()
        return s
