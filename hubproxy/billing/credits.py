"""Balances, holds and rates in memory: admission without overdraft, settlement exactly once.

The hot path never reads the database for money. Balances are loaded at start, move with each
settlement and grant this process makes (written through the writer), and follow ledger rows
that other processes append (the CLI) by tailing the ledger. Holds exist only here: a crash
drops them, and nothing is left to release after a restart.

The one bound on overshoot: a call is admitted against its hold (the prompt estimate at the
input rate, plus max_tokens, or the default, at the output rate for each of the `n` (or
`best_of`) choices it asks for), but settles at what the upstream reports. It can cost more
than it held only when the prompt is larger than estimated, or the client set no max_tokens
and the model wrote more than the default. So a balance goes below zero by at most the sum,
over calls settling at once, of (actual - held) for such calls; with max_tokens set and a
prompt no larger than estimated, never. Estimates count a token per non-ASCII character
(tokens.py), so a prompt in any script is held at no less than its size.

Several instances on one PostgreSQL admit against leases instead (billing/leases.py): a
slice of the balance leased by this instance alone, the same bound holding across instances.
On SQLite (`leases` is None) the whole balance is this process's lease, and admission is the
synchronous lookup it always was. With leases, `admit` returns a `Pending` when the call needs
more than the local lease has: awaiting it costs that call one lease round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hubproxy import money
from hubproxy.billing import prices, tokens
from hubproxy.billing.leases import Leases
from hubproxy.errors import BadRequest, Forbidden, PaymentRequired
from hubproxy.providers.base import JSON, MediaUsage, Usage
from hubproxy.store import ledger
from hubproxy.store.follow import Cursor
from hubproxy.store.ops import Op

RateKey = tuple[str, str, str]  # provider, model, type


@dataclass(slots=True)
class Hold:
    user_id: int
    amount: int  # micro-credits set aside
    rate: prices.Rate
    images: int = 0  # priced per image when the rate says so
    media: MediaUsage | None = None  # what of an image or audio call is known before it runs
    settled: bool = False
    reserved: bool = True  # False: a quote (a subscription pays), nothing held or debited


class RateBook:
    """Rates by (provider, model, type), replaced whole from the model_rates table."""

    def __init__(self) -> None:
        self._rates: dict[RateKey, prices.Rate] = {}

    def replace(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._rates = {
            (r["provider"], r["model"], r["type"]): prices.Rate.from_row(r) for r in rows
        }

    def get(self, provider: str, model: str, kind: str) -> prices.Rate | None:
        return self._rates.get((provider, model, kind))

    def items(self) -> list[tuple[RateKey, prices.Rate]]:
        return list(self._rates.items())

    def __len__(self) -> int:
        return len(self._rates)


class Credits:
    def __init__(self, mode: str, rates: RateBook, default_max_tokens: int, source: str) -> None:
        self.enabled = mode == "credits"
        self.rates = rates
        self.default_max_tokens = default_max_tokens
        self.source = source  # marks the ledger rows this process writes
        self.balances: dict[int, int] = {}
        # By user: the micro-credits held, and how many holds they are. An entry goes when its
        # user's last hold is settled, not when the amount reaches 0: free models hold 0.
        self.held: dict[int, int] = {}
        self.holds: dict[int, int] = {}
        self.cursor = Cursor()  # where `follow` has read the ledger up to (store/follow.py)
        self.leases: Leases | None = None  # set on PostgreSQL: admit against them

    def load(self, balances: dict[int, int], cursor: Cursor) -> None:
        self.balances = balances
        self.cursor = cursor

    def follow(self, rows: Iterable[tuple[int, int, int]], cursor: Cursor) -> None:
        """Apply ledger rows another process appended past `self.cursor`: (id, user_id,
        amount), and the cursor after them."""
        for _, user_id, amount in rows:
            self.balances[user_id] = self.balances.get(user_id, 0) + amount
        self.cursor = cursor

    def holding(self, user_id: int) -> int:
        """What the user's calls in flight hold (the leases' upkeep asks)."""
        return self.held.get(user_id, 0)

    def available(self, user_id: int) -> int:
        return self.balances.get(user_id, 0) - self.held.get(user_id, 0)

    def admit(
        self,
        user_id: int,
        provider: str,
        model: str,
        kind: str,
        body: JSON,
        media: MediaUsage | None = None,
        prompt_tokens: int | None = None,
    ) -> Hold | Pending | None:
        """Hold the call's most likely maximum cost, or refuse it. None when billing is off.
        `prompt_tokens`: the body's prompt estimate, when the caller has made it already.
        `media`: an image or audio call's known consumption (images asked for, characters to
        speak, the upload's size), held at the rate's media prices. With leases, a call that
        needs more than the local lease has gets a `Pending`: await its `wait()`."""
        if not self.enabled:
            return None
        rate = self.rates.get(provider, model, kind)
        if rate is None:
            raise Forbidden(
                f"The model '{provider}/{model}' has no {kind} rate, and billing is on: "
                "an operator must set one (hubproxy rates set) before it can be used.",
                code="model_not_priced",
                param="model",
            )
        images = tokens.images(body) if rate.per_image else 0
        amount = prices.hold(
            rate,
            tokens.prompt(body) if prompt_tokens is None else prompt_tokens,
            self.max_output(body, kind),
            images,
            media=media,
        )
        leases = self.leases
        if leases is None:
            available = self.available(user_id)
            if amount > available:
                raise _refused(available, amount)
            return self._hold(Hold(user_id, amount, rate, images, media))
        unheld = leases.usable(user_id) - self.held.get(user_id, 0)
        if amount > unheld:
            return Pending(self, leases, Hold(user_id, amount, rate, images, media))
        leases.admitted(user_id, unheld - amount)
        return self._hold(Hold(user_id, amount, rate, images, media))

    def _hold(self, hold: Hold) -> Hold:
        user_id = hold.user_id
        self.held[user_id] = self.held.get(user_id, 0) + hold.amount
        self.holds[user_id] = self.holds.get(user_id, 0) + 1
        return hold

    def quote(
        self,
        user_id: int,
        provider: str,
        model: str,
        kind: str,
        body: JSON,
        media: MediaUsage | None = None,
    ) -> Hold | None:
        """A call that a subscription pays for (AIGNE v1): priced at its rate for the record,
        whatever the billing mode and the balance, but nothing is held, and settling it
        debits nothing. None when the model has no rate (it is recorded at 0)."""
        rate = self.rates.get(provider, model, kind)
        if rate is None:
            return None
        images = tokens.images(body) if rate.per_image else 0
        return Hold(user_id, 0, rate, images, media, reserved=False)

    def settle(
        self, hold: Hold, call_id: str, usage: Usage | None, media: MediaUsage | None = None
    ) -> tuple[int, list[Op]]:
        """Release the hold and debit what was consumed (`media`: what an image or audio call
        turned out to consume, else what was held for); returns the cost and its writes. A
        quote's cost is returned with no writes. Settling twice is a programming error: it
        raises rather than bill twice."""
        if hold.settled:
            raise RuntimeError(f"call {call_id} is settled already")
        hold.settled = True
        consumed = media if media is not None else hold.media
        if not hold.reserved:
            return (prices.cost(hold.rate, usage, hold.images, consumed) if usage else 0), []
        user = hold.user_id
        if self.holds[user] > 1:
            self.holds[user] -= 1
            self.held[user] -= hold.amount
        else:  # the user's last hold: nothing else is held for them
            del self.holds[user], self.held[user]
        # Nothing reached the upstream without usage: no tokens, and no images, to pay for.
        amount = prices.cost(hold.rate, usage, hold.images, consumed) if usage is not None else 0
        if amount == 0:
            return 0, []
        self.balances[user] = self.balances.get(user, 0) - amount
        debit = ledger.debit(user, call_id, amount, self.source)
        if self.leases is None:
            return amount, [debit]
        return amount, [self.leases.consume(user, call_id, amount), debit]

    def grant(self, *, user_id: int, kind: str, amount: int, note: str, actor_user_id: int) -> Op:
        """The ledger row of a grant, refund or adjustment made by this process (the admin
        API), naming the admin who made it. Memory is not touched: see `apply_once`."""
        return ledger.entry(
            user_id, kind, amount, source=self.source, note=note, actor_user_id=actor_user_id
        )

    def apply_once(self, committed: asyncio.Future[None], user_id: int, amount: int) -> None:
        """Move the balance by a grant when, and only if, its ledger row commits: before,
        nothing may be spent against it; if the write fails, memory is as it was; and a
        request that is gone by then (the admin disconnected) still leaves memory and ledger
        in step."""

        def done(fut: asyncio.Future[None]) -> None:
            if not fut.cancelled() and fut.exception() is None:
                self.balances[user_id] = self.balances.get(user_id, 0) + amount

        if committed.done():  # committed inline already: apply before anyone reads it
            done(committed)
        else:
            committed.add_done_callback(done)

    def max_output(self, body: JSON, kind: str) -> int:
        """The output tokens a call may write: every choice's, each what it asked for or the
        default."""
        return self._max_output(body, kind) * _choices(body, kind)

    def _max_output(self, body: JSON, kind: str) -> int:
        """The output tokens one choice may write."""
        if kind != "chat":
            return 0
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return self.default_max_tokens


class Pending:
    """A call that needs more than the local lease has: `wait()` leases what is missing (one
    round trip) and holds the call, or refuses it (402) when the balance has not that much
    free. Only this call waits; calls that fit in the lease go on meanwhile."""

    __slots__ = ("_credits", "_hold", "_leases")

    def __init__(self, credits: Credits, leases: Leases, hold: Hold) -> None:
        self._credits, self._leases, self._hold = credits, leases, hold

    async def wait(self) -> Hold:
        credits, leases, hold = self._credits, self._leases, self._hold
        user = hold.user_id
        async with leases.turn(user):
            # Calls admitted meanwhile may take what was leased: ask again, a bounded few times.
            for attempt in range(4):
                unheld = leases.usable(user) - credits.held.get(user, 0)
                if hold.amount <= unheld:
                    leases.admitted(user, unheld - hold.amount)
                    return credits._hold(hold)
                if attempt == 3 or not await leases.acquire(user, hold.amount - unheld):
                    break
        raise _refused(credits.available(user), hold.amount)


def _refused(available: int, amount: int) -> PaymentRequired:
    return PaymentRequired(
        f"Insufficient credits: {money.format_amount(max(available, 0))} available, "
        f"this call needs up to {money.format_amount(amount)}.",
        code="insufficient_credits",
    )


def _choices(body: JSON, kind: str) -> int:
    """How many choices a chat call may generate, each up to the output limit, and so be
    billed for: `n`, or `best_of` where an upstream has it (it generates that many and
    returns the best `n`). A value that is not a positive integer is refused, since the hold
    could not cover what an upstream that reads it leniently would bill."""
    if kind != "chat":
        return 1
    most = 1
    for name in ("n", "best_of"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"'{name}' must be a positive integer.", param=name)
        most = max(most, value)
    return most
