"""Credit leases: the slices of users' balances this instance may hold calls against, when
several instances share one PostgreSQL.

An instance never admits against a balance: it admits against what it leased of it. A lease is
taken in one atomic statement (store/postgres/leases.py: `UPDATE credit_balances SET leased =
leased + slice WHERE balance - leased >= slice`), so the leases of all instances together never
exceed a balance. Holds are carved out of the local lease in memory, with no round trip; a
settled call's cost comes out of the lease in the same transaction as its debit. In the
background the lease of a user whose unheld part fell below half a slice is refilled, every
lease is renewed (its expiry pushed back) every `renew_s`, the unused lease of a user idle for
`idle_s` is given back, and expired leases of any instance (a dead one) are reclaimed. At
shutdown, once the writer has committed every debit, all of this instance's leases go back.

A call that needs more than what is left of the local lease waits for one lease round trip
(`acquire`); only that call waits. If the instance could not renew its leases for `ttl_s`, it
takes them for lost (another instance may have reclaimed them) and admits nothing against them
until it leases again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from hubproxy.errors import ServiceUnavailable
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op
from hubproxy.store.postgres import leases as sql
from hubproxy.tasks import Tasks

log = structlog.get_logger("hubproxy.leases")


class LeaseBook(Protocol):
    """The lease statements (store/postgres/leases.LeaseStore)."""

    async def lease(
        self, *, instance: str, user_id: int, want: int, need: int, expires_at: int
    ) -> int: ...

    async def give_back(self, *, instance: str, user_id: int, amount: int | None) -> int: ...

    async def renew(self, *, instance: str, expires_at: int) -> dict[int, int]: ...

    async def reclaim(self, *, now: int, instance: str | None = None) -> int: ...

    async def close(self) -> None: ...


# Defaults: a slice of 1 credit; leases live 30 s unless renewed (an instance silent that long
# is dead: instances.py), are renewed every 5 s, and go back after 10 s without a call.
SLICE = 1_000_000


class Leases:
    def __init__(
        self,
        book: LeaseBook,
        *,
        instance: str,
        slice_amount: int = SLICE,
        ttl_s: float = 30.0,
        renew_s: float = 5.0,
        idle_s: float = 10.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.book = book
        self.instance = instance
        self.slice = slice_amount  # micro-credits leased at a time (at least what a call needs)
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.idle_s = idle_s
        self.timeout_s = timeout_s  # a lease round trip longer than this fails the call (503)
        self._clock = clock
        # By user: what this instance holds of the user's balance. Never more than the database
        # says it holds: a lease counts here once committed, a cost comes off here first.
        self.leased: dict[int, int] = {}
        self._valid_until: dict[int, float] = {}  # past it, the lease may have been reclaimed
        self._used: dict[int, float] = {}  # when a call of the user was last admitted
        self._refilling: set[int] = set()
        self._waiting: dict[int, asyncio.Lock] = {}  # calls short of lease, by user: in turn
        self._tasks = Tasks()
        self.round_trips = 0  # leases asked for (what the tests count)

    def usable(self, user_id: int) -> int:
        """What this instance may hold calls of the user against: its lease, while valid."""
        leased = self.leased.get(user_id, 0)
        if leased and self._clock() >= self._valid_until.get(user_id, 0.0):
            return 0
        return leased

    def admitted(self, user_id: int, unheld: int) -> None:
        """A call of the user was admitted, leaving `unheld` of the lease: refill it in the
        background before it runs out."""
        self._used[user_id] = self._clock()
        if unheld < self.slice // 2 and user_id not in self._refilling:
            self._refilling.add(user_id)
            self._tasks.spawn(f"lease-refill-{user_id}", self._refill(user_id))

    async def acquire(self, user_id: int, need: int) -> int:
        """Lease at least `need` more of the user's balance (a slice if that much is free), in
        one round trip; what was leased (0: not `need` free)."""
        self.round_trips += 1
        sent = self._clock()
        try:
            got = await asyncio.wait_for(
                self.book.lease(
                    instance=self.instance, user_id=user_id, want=max(self.slice, need),
                    need=need, expires_at=now_ms() + int(self.ttl_s * 1000),
                ),
                self.timeout_s,
            )  # fmt: skip
        except Exception as exc:  # the database is down or slow: not the caller's fault
            log.error("lease_failed", user=user_id, error=repr(exc))
            raise ServiceUnavailable(
                "Credits could not be checked: the database did not answer. Try again shortly.",
                code="credits_unavailable",
            ) from exc
        if got:
            if self.usable(user_id) == 0:  # nothing valid was held: start afresh
                self.leased[user_id] = 0
            self.leased[user_id] = self.leased.get(user_id, 0) + got
            self._valid_until[user_id] = sent + self.ttl_s
        return got

    @property
    def refilling(self) -> bool:
        """A refill is under way."""
        return bool(self._refilling)

    def turn(self, user_id: int) -> asyncio.Lock:
        """Calls of one user that are short of lease wait for it in turn: each one after the
        first finds what the one before leased (a slice), and most need no round trip."""
        lock = self._waiting.get(user_id)
        if lock is None:
            lock = self._waiting[user_id] = asyncio.Lock()
        return lock

    def consume(self, user_id: int, call_id: str, amount: int) -> Op:
        """A settled call's cost (> 0) comes off the lease: here now, and in the database in the
        debit's transaction (the op, to run before the debit)."""
        leased = self.leased.get(user_id, 0)
        self.leased[user_id] = leased - min(leased, amount)
        return sql.consume(self.instance, user_id, call_id, amount)

    async def tend(self, held: Callable[[int], int]) -> None:
        """One round of upkeep: renew every lease, give back what idle users do not hold
        (`held(user)`: what their calls in flight hold), and reclaim the expired leases of any
        instance."""
        sent = self._clock()
        kept = await self.book.renew(
            instance=self.instance, expires_at=now_ms() + int(self.ttl_s * 1000)
        )
        for user_id in list(self.leased):
            if user_id not in kept:  # reclaimed: we were taken for dead
                log.warning("lease_lost", user=user_id)
                self.leased[user_id] = 0
            self._valid_until[user_id] = sent + self.ttl_s
        now = self._clock()
        for user_id, leased in list(self.leased.items()):
            holding = held(user_id)
            if now - self._used.get(user_id, 0.0) >= self.idle_s and (
                leased > holding or not holding
            ):
                self.leased[user_id] = holding  # before the round trip: not admitted on
                # Nothing held: the whole row goes (what the database still counts for costs
                # not yet committed comes off the balance with their debits all the same).
                amount = leased - holding if holding else None
                await self.book.give_back(instance=self.instance, user_id=user_id, amount=amount)
                if amount is None and not self.leased.get(user_id) and not held(user_id):
                    del self.leased[user_id]  # its row is gone too: nothing left to renew
                    self._valid_until.pop(user_id, None)
                    self._used.pop(user_id, None)
                    lock = self._waiting.get(user_id)
                    if lock is not None and not lock.locked():
                        del self._waiting[user_id]
        await self.book.reclaim(now=now_ms())

    async def run(self, held: Callable[[int], int]) -> None:
        """Tend the leases every `renew_s` until cancelled (a failed round is logged; the next
        one still runs)."""
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self.tend(held)
            except Exception:
                log.exception("lease_upkeep_failed")

    async def recover(self) -> int:
        """At start, before serving: give back what a previous run under this instance's name
        leased (it crashed: it holds nothing now). The journal's replay, done before, took its
        committed calls' costs out of those leases first. Returns how many were given back."""
        return await self.book.reclaim(now=now_ms(), instance=self.instance)

    async def on_dead(self, instances: list[str]) -> None:
        """Instances found dead (their heartbeats stopped): their leases go back at once,
        without waiting for them to expire (instances.Instance.on_dead's hook)."""
        for instance in instances:
            await self.book.reclaim(now=now_ms(), instance=instance)

    async def close(self) -> None:
        """Give back every lease this instance holds, and close the lease connection. Only once
        the writer has committed every debit (a cost not yet taken out of its lease would be
        given back with it)."""
        await self._tasks.stop()
        self.leased.clear()
        try:
            await self.book.reclaim(now=now_ms(), instance=self.instance)
        except Exception as exc:  # the database is gone: the leases expire by themselves
            log.error("leases_not_given_back", error=repr(exc), expire_in_s=self.ttl_s)
        finally:
            await self.book.close()

    async def _refill(self, user_id: int) -> None:
        try:
            await self.acquire(user_id, 1)
        except Exception:
            log.exception("lease_refill_failed", user=user_id)
        finally:
            self._refilling.discard(user_id)
