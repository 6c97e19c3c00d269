"""Rate limits per key and per user: requests and tokens per minute, and concurrent requests.

Each key and each user with a limit has a Meter: a sliding one-minute window of requests, one
of tokens, and a count of calls in flight. A call is admitted only if every limit of its key
and of its user has room, and then counted in all of them at once (one event loop: no two
admissions interleave, so no more are ever admitted than the limits allow). Tokens are held
at the estimate (the prompt plus the most output the call may write) and corrected to the
count the call settles with; a call in flight is counted until it settles, on every way out.

Limits come from [limits] (0: none), overridden per key and per user (NULL in the database:
the default). A key or user with no limit at all is not metered; one given a limit later is
metered from then on.

Across N instances on one PostgreSQL (`spread(N)`, from the live instances' heartbeats), each
instance enforces its share of every limit, ceil(limit / N), in memory: no round trip. Together
they admit at most N × ceil(limit / N) ≤ limit + N − 1 requests a minute, or calls at once, for
a key or a user. Tokens the same, with one exception so that a call no larger than the whole
limit is never refused for the split alone: an instance whose window holds nothing of the key
(or user) admits one call up to the whole limit. The bound is docs/scaling.md's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hubproxy.config import LimitsSettings
from hubproxy.errors import RateLimited
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route
from hubproxy.limits.window import Window


@dataclass(frozen=True, slots=True)
class Limits:
    """Per minute and at once; 0 is no limit."""

    rpm: int = 0
    tpm: int = 0
    concurrency: int = 0

    def __bool__(self) -> bool:
        return bool(self.rpm or self.tpm or self.concurrency)

    def share(self, instances: int) -> Limits:
        """One instance's share of these limits among `instances`: each rounded up (a limit
        stays a limit; 0 stays none)."""
        return Limits(
            -(-self.rpm // instances), -(-self.tpm // instances),
            -(-self.concurrency // instances),
        )  # fmt: skip

    @classmethod
    def over(cls, default: Limits, row: Mapping[str, Any], prefix: str = "") -> Limits:
        """`default` with the row's overrides (columns `{prefix}rpm` ...; NULL keeps it)."""
        rpm, tpm, conc = (row.get(prefix + n) for n in ("rpm", "tpm", "concurrency"))
        return cls(
            default.rpm if rpm is None else int(rpm),
            default.tpm if tpm is None else int(tpm),
            default.concurrency if conc is None else int(conc),
        )


NONE = Limits()


class Meter:
    """What one key or one user has used: requests and tokens this minute, calls in flight."""

    __slots__ = ("active", "requests", "tokens")

    def __init__(self) -> None:
        self.requests = Window()
        self.tokens = Window()
        self.active = 0


@dataclass(slots=True)
class Ticket:
    metered: list[tuple[str, Meter, Limits]]  # ('key' | 'user', its meter, its limits)
    second: int  # when the call was counted
    tokens: int  # the tokens counted for it so far
    admitted: list[int]  # each meter's requests in the window once this one was counted


class RateLimits:
    """The addon: admit or refuse (429), correct the tokens at settle, say the state.

    The headers of an answer tell the requests left as the call was admitted (itself
    counted: of calls admitted at once, each sees its own number) and the tokens left as the
    answer leaves (a whole answer's after its count replaced its estimate; a stream's while
    the estimate is held)."""

    def __init__(
        self, settings: LimitsSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        # Told each refusal: scope ("key" or "user") and limit ("rpm", "tpm", "concurrency").
        self.on_refusal: Callable[[str, str], None] | None = None
        self.defaults(settings)
        self._keys: dict[int, Limits] = {}
        self._users: dict[int, Limits] = {}
        self._meters: dict[tuple[str, int], Meter] = {}
        self.instances = 1  # the live instances this one shares every limit with

    def spread(self, instances: int) -> None:
        """The number of live instances (this one included) changed: from now on each admits
        its share of every limit."""
        self.instances = max(1, instances)

    def defaults(self, settings: LimitsSettings) -> None:
        """The [limits] defaults (at start, and on SIGHUP): `replace` applies them to the
        keys and users again."""
        self.key_default = Limits(settings.key_rpm, settings.key_tpm, settings.key_concurrency)
        self.user_default = Limits(settings.user_rpm, settings.user_tpm, settings.user_concurrency)

    def replace(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The overrides of every active key and of its user (db.active_keys' rows)."""
        keys: dict[int, Limits] = {}
        users: dict[int, Limits] = {}
        for row in rows:
            keys[row["id"]] = Limits.over(self.key_default, row)
            users[row["user_id"]] = Limits.over(self.user_default, row, "user_")
        self._keys, self._users = keys, users

    def limits(self, key_id: int | None, user_id: int) -> tuple[Limits, Limits]:
        """A key's limits and its user's (a call signed by an AIGNE v1 app has no key)."""
        key = NONE if key_id is None else self._keys.get(key_id, self.key_default)
        return key, self._users.get(user_id, self.user_default)

    def admit(self, ctx: CallContext, route: Route, kind: str, estimate: int) -> Ticket | None:
        p = ctx.principal
        key, user = self.limits(p.key_id, p.user_id)
        if not (key or user):
            return None
        whole = {"key": key.tpm, "user": user.tpm}  # tokens a minute, unsplit
        if self.instances > 1:
            key, user = key.share(self.instances), user.share(self.instances)
        now = self._clock()
        second = int(now)
        metered = [
            (who, self._meter(who, ident), lim)
            for who, ident, lim in (("key", p.key_id, key), ("user", p.user_id, user))
            if lim and ident is not None  # a key's limits are NONE when there is no key
        ]
        for _, meter, _ in metered:
            meter.requests.advance(second)
            meter.tokens.advance(second)
        for who, meter, lim in metered:
            if lim.tpm < estimate <= whole[who] and not meter.tokens.total:
                # A call larger than this instance's share, but not than the whole limit, on an
                # instance with nothing else of it in the window: admitted, alone.
                lim = Limits(lim.rpm, estimate, lim.concurrency)
            refused = _refusal(who, meter, lim, estimate=estimate, now=now)
            if refused is not None:
                limit, message, wait = refused
                if self.on_refusal is not None:
                    self.on_refusal(who, limit)
                retry = max(1, math.ceil(wait))
                raise RateLimited(
                    f"{message} Retry in {retry} s.",
                    headers={**_headers(now, metered), "Retry-After": str(retry)},
                )
        for _, meter, _ in metered:
            meter.active += 1
            meter.requests.add(second, 1)
            meter.tokens.add(second, estimate)
        return Ticket(metered, second, estimate, [m.requests.total for _, m, _ in metered])

    def settle(self, ticket: Ticket | None, call: Call | None) -> None:
        """Release the call's place and count its tokens as they were: what it used (nothing
        if it never reached the upstream), not the estimate it was held at. A call refused
        after the limits admitted it (by billing, a key scope) gives its request back too."""
        if ticket is None:
            return
        used = call.usage.total_tokens if call is not None and call.usage is not None else 0
        delta, ticket.tokens = used - ticket.tokens, used
        now = int(self._clock())
        for _, meter, _ in ticket.metered:
            meter.active -= 1
            meter.tokens.advance(now)
            meter.tokens.correct(ticket.second, delta)
            if call is None:  # refused later in admission: it was never a call
                meter.requests.advance(now)
                meter.requests.correct(ticket.second, -1)

    def headers(self, ticket: Ticket | None) -> dict[str, str]:
        if ticket is None:
            return {}
        return _headers(self._clock(), ticket.metered, ticket.admitted)

    def _meter(self, who: str, ident: int) -> Meter:
        meter = self._meters.get((who, ident))
        if meter is None:
            meter = self._meters[(who, ident)] = Meter()
        return meter


Metered = list[tuple[str, Meter, Limits]]


def _refusal(
    who: str, meter: Meter, lim: Limits, *, estimate: int, now: float
) -> tuple[str, str, float] | None:
    """Which of this key's or user's limits has no room for one more call ("concurrency",
    "rpm" or "tpm"), why, and how many seconds until it may have; None if they have room."""
    if lim.concurrency and meter.active >= lim.concurrency:
        # A call in flight ends when it ends: try again shortly.
        message = f"Too many concurrent requests for this {who}: at most {lim.concurrency}."
        return "concurrency", message, 1.0
    if lim.rpm and meter.requests.total + 1 > lim.rpm:
        return (
            "rpm",
            f"Rate limit reached for this {who}: {lim.rpm} requests per minute.",
            meter.requests.room_in(now, lim.rpm, 1),
        )
    if lim.tpm and estimate > lim.tpm:
        return (
            "tpm",
            f"This call may use up to {estimate} tokens (the prompt and max_tokens), more than "
            f"this {who}'s limit of {lim.tpm} tokens per minute: send a smaller max_tokens.",
            60.0,
        )
    if lim.tpm and meter.tokens.total + estimate > lim.tpm:
        return (
            "tpm",
            f"Rate limit reached for this {who}: {lim.tpm} tokens per minute "
            f"({meter.tokens.total} counted, this call may use up to {estimate}).",
            meter.tokens.room_in(now, lim.tpm, estimate),
        )
    return None


def _headers(now: float, metered: Metered, admitted: list[int] | None = None) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers, for the tightest of the key's and the user's limits.
    `admitted`: each meter's request count just after the call was admitted (what a call's
    own answer tells); else the count now."""
    second = int(now)
    out: dict[str, str] = {}
    for unit in ("requests", "tokens"):
        tightest: tuple[int, int, Window] | None = None
        for i, (_, meter, lim) in enumerate(metered):
            limit, window = (
                (lim.rpm, meter.requests) if unit == "requests" else (lim.tpm, meter.tokens)
            )
            if not limit:
                continue
            window.advance(second)
            used = admitted[i] if admitted is not None and unit == "requests" else window.total
            remaining = max(0, limit - used)
            if tightest is None or remaining < tightest[1]:
                tightest = (limit, remaining, window)
        if tightest is not None:
            limit, remaining, window = tightest
            out[f"x-ratelimit-limit-{unit}"] = str(limit)
            out[f"x-ratelimit-remaining-{unit}"] = str(remaining)
            out[f"x-ratelimit-reset-{unit}"] = duration(window.reset_in(now))
    return out


def duration(seconds: float) -> str:
    """A duration as OpenAI writes it (Go's form): 12ms, 1.5s, 1m0s."""
    ms = max(0, round(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
