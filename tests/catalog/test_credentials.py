"""The credential pool: smooth weighted round-robin, disable on 401/403 with rechecks, cool
on 429, and the last hour's counters. Time is injected."""

from __future__ import annotations

from collections import Counter

from hubproxy.catalog.credentials import (
    ACTIVE,
    COOLING,
    DISABLED,
    RECHECK_MAX_S,
    Credential,
    CredentialPool,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def cred(label: str, weight: int = 1) -> Credential:
    return Credential(
        id=label, provider="p", label=label, weight=weight, key=f"sk-{label}-0000000000"
    )


def test_weighted_picks_match_the_weights_over_1000_picks() -> None:
    pool = CredentialPool([cred("a", 5), cred("b", 3), cred("c", 2)], clock=Clock())
    firsts = [pool.order()[0].label for _ in range(1000)]
    assert Counter(firsts) == {"a": 500, "b": 300, "c": 200}
    # Smooth: the heavy one never runs more than twice in a row.
    assert "aaa" not in "".join(firsts)
    # Every order lists each usable credential once: the pick, then the others.
    assert sorted(c.label for c in pool.order()) == ["a", "b", "c"]


def test_401_disables_then_rechecks_with_doubling_backoff_and_recovers() -> None:
    clock = Clock()
    changes: list[str] = []
    a, b = cred("a"), cred("b")
    pool = CredentialPool([a, b], clock=clock, on_change=lambda c: changes.append(c.state))
    pool.failed(a, 401, None)
    assert a.state == DISABLED and a.until == clock.now + 5 and changes == [DISABLED]
    assert [c.label for c in pool.order()] == ["b", "a"]  # resting last
    clock.now += 5
    assert pool.order()[0] is a  # due: rechecked first, once
    assert pool.order()[0] is b  # a second call does not probe it again meanwhile
    pool.failed(a, 403, None)
    assert a.until == clock.now + 10  # 5 s × 2¹
    for _ in range(20):
        clock.now = a.until
        assert pool.order()[0] is a
        pool.failed(a, 401, None)
    assert a.until - clock.now == RECHECK_MAX_S  # capped at 3 h
    clock.now = a.until
    assert pool.order()[0] is a
    pool.succeeded(a)
    assert a.state == ACTIVE and a.strikes == 0 and changes[-1] == ACTIVE
    assert a.view(clock.now)["successes_last_hour"] == 1  # the failures were hours ago


def test_429_cools_for_retry_after_then_comes_back() -> None:
    clock = Clock()
    a, b = cred("a", 10), cred("b", 1)
    pool = CredentialPool([a, b], clock=clock)
    pool.failed(a, 429, 7.0)
    assert a.state == COOLING and a.view(clock.now)["resting_until"] == int((clock.now + 7) * 1000)
    assert [c.label for c in pool.order()] == ["b", "a"]
    clock.now += 7
    assert pool.order()[0] is a and a.state == ACTIVE
    pool.failed(a, 429, None)  # no Retry-After: 30 s
    assert a.until == clock.now + 30
    pool.failed(b, 500, None)
    assert b.state == ACTIVE and b.last_error == "the upstream failed with status 500"


def test_counters_cover_the_last_hour_only() -> None:
    clock = Clock()
    a = cred("a")
    pool = CredentialPool([a], clock=clock)
    pool.succeeded(a)
    pool.failed(a, None, None)
    clock.now += 1800
    pool.succeeded(a)
    assert a.counts(clock.now) == (2, 1)
    clock.now += 1900
    assert a.counts(clock.now) == (1, 0)
    view = a.view(clock.now)
    assert view["key"] == "sk-…0000" and "sk-a-0000000000" not in str(view)
