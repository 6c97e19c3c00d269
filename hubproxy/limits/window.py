"""A sliding one-minute window of counts, kept as 60 one-second slots: O(1) per update.

A count added at second s stays in the window until second s + 59 ends. So no 60 consecutive
whole seconds hold more than a limit admits against the window's total; a 60 s span that
does not start on a whole second can add what its first, partial second held (the one-second
granularity is the stated bound; a fixed window would allow twice the limit at its edge).
Seconds are those of a monotonic clock: a wall-clock step neither frees nor blocks anyone.
"""

from __future__ import annotations

SLOTS = 60  # seconds in the window


class Window:
    __slots__ = ("_counts", "_last", "total")

    def __init__(self) -> None:
        self._counts = [0] * SLOTS
        self._last = 0  # the newest second the slots are up to date with
        self.total = 0  # the sum over the window

    def advance(self, second: int) -> None:
        """Drop the counts of seconds that left the window by `second`: at most SLOTS slot
        clears, and one per second that passed, whatever the traffic."""
        gap = second - self._last
        if gap <= 0:
            return
        counts = self._counts
        for i in range(1, min(gap, SLOTS) + 1):
            slot = (self._last + i) % SLOTS
            self.total -= counts[slot]
            counts[slot] = 0
        self._last = second

    def add(self, second: int, amount: int) -> None:
        """Count `amount` at `second` (the window is advanced to it first)."""
        self.advance(second)
        self._counts[second % SLOTS] += amount
        self.total += amount

    def correct(self, second: int, delta: int) -> None:
        """Change what was counted at `second` by `delta`, if it is still in the window."""
        if self._last - SLOTS < second <= self._last:
            self._counts[second % SLOTS] += delta
            self.total += delta

    def reset_in(self, now: float) -> float:
        """Seconds until the window is empty (0 if it is)."""
        second = int(now)
        for back in range(SLOTS):
            if self._counts[(second - back) % SLOTS] > 0:
                return max(0.0, second - back + SLOTS - now)
        return 0.0

    def room_in(self, now: float, limit: int, need: int) -> float:
        """Seconds until `need` more fits under `limit` (what leaves the window first frees
        room first); 0 if it fits now."""
        second = int(now)
        over = self.total + need - limit
        if over <= 0:
            return 0.0
        for age in range(SLOTS - 1, -1, -1):  # oldest second first
            over -= self._counts[(second - age) % SLOTS]
            if over <= 0:
                return max(0.0, second - age + SLOTS - now)
        return float(SLOTS)  # more than the whole window: never, within a minute
