"""A provider's credentials in memory: smooth weighted choice, cooling and disabling, counters.

The gateway asks a pool for `order()` before it sends, and tells it how each try went with
`succeeded(cred)` or `failed(cred, status, retry_after_s)`:
- 401 or 403: the credential is disabled, and rechecked after 5 s × 2ⁿ (at most 3 h): once
  due, the next `order()` tries it first, one call at a time; a success brings it back.
- 429: it cools for Retry-After (30 s if the upstream gave none).
- anything else counts as a failure and is remembered as its last error; its state holds.
Every state change is logged as a `credential_state` event and handed to `on_change`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

from hubproxy.catalog.sealing import mask

ACTIVE, COOLING, DISABLED = "active", "cooling", "disabled"
RECHECK_BASE_S = 5.0
RECHECK_MAX_S = 3 * 3600.0
DEFAULT_COOL_S = 30.0
MAX_COOL_S = 3600.0
_MINUTES = 60  # the counters' window: the last hour, by minute

log = structlog.get_logger("hubproxy.catalog")
Clock = Callable[[], float]  # wall-clock seconds; tests inject their own
OnChange = Callable[["Credential"], None]


@dataclass(eq=False, slots=True)
class Credential:
    """One key of one provider, with what the pool has learnt about it. `key` is the clear
    key and stays in memory; `masked` is all that is ever shown."""

    id: str
    provider: str
    label: str
    weight: int
    key: str = field(repr=False)
    state: str = ACTIVE
    until: float = 0.0  # cooling or disabled until (wall-clock seconds); 0: not resting
    strikes: int = 0  # 401/403 in a row: the recheck backoff is 5 s × 2^(strikes-1)
    last_error: str | None = None
    last_used: float | None = None
    current: int = 0  # smooth weighted round-robin's running weight
    _probing: bool = False
    _buckets: dict[int, list[int]] = field(default_factory=dict)  # minute → [ok, failed]

    @property
    def masked(self) -> str:
        return mask(self.key)

    def counts(self, now: float) -> tuple[int, int]:
        """Successes and failures in the last hour."""
        self._prune(now)
        return (
            sum(b[0] for b in self._buckets.values()),
            sum(b[1] for b in self._buckets.values()),
        )

    def _count(self, now: float, ok: bool) -> None:
        minute = int(now // 60)
        bucket = self._buckets.get(minute)
        if bucket is None:
            self._prune(now)
            bucket = self._buckets[minute] = [0, 0]
        bucket[0 if ok else 1] += 1

    def _prune(self, now: float) -> None:
        oldest = int(now // 60) - _MINUTES + 1
        for minute in [m for m in self._buckets if m < oldest]:
            del self._buckets[minute]

    def view(self, now: float) -> dict[str, object]:
        """What the API and the CLI show: never the key."""
        ok, failed = self.counts(now)
        return {
            "id": self.id,
            "label": self.label,
            "key": self.masked,
            "weight": self.weight,
            "state": self.state_at(now),
            "last_error": self.last_error,
            "last_used_at": None if self.last_used is None else int(self.last_used * 1000),
            "resting_until": int(self.until * 1000) if self.until > now else None,
            "successes_last_hour": ok,
            "failures_last_hour": failed,
        }

    def state_at(self, now: float) -> str:
        if self.state == COOLING and self.until <= now:
            return ACTIVE
        return self.state


class CredentialPool:
    """The usable credentials of one provider. Not thread-safe: the event loop's only."""

    def __init__(
        self,
        credentials: Iterable[Credential] = (),
        *,
        clock: Clock = time.time,
        on_change: OnChange | None = None,
    ) -> None:
        self.credentials = list(credentials)
        self._clock = clock
        self._on_change = on_change

    def __len__(self) -> int:
        return len(self.credentials)

    def order(self) -> list[Credential]:
        """The credentials to try, in order: a disabled one due for its recheck (one call
        at a time), then the smooth weighted round-robin pick, then the other usable ones
        (by running weight), then those resting, soonest back first."""
        if len(self.credentials) == 1 and self.credentials[0].state == ACTIVE:
            return list(self.credentials)  # the common case: one key, in use
        now = self._clock()
        usable: list[Credential] = []
        resting: list[Credential] = []
        probe: Credential | None = None
        for cred in self.credentials:
            if cred.state == COOLING and cred.until <= now:
                self._set(cred, ACTIVE, now)
            if cred.state == ACTIVE:
                usable.append(cred)
            elif (
                probe is None and cred.state == DISABLED and cred.until <= now
                and not cred._probing
            ):  # fmt: skip
                probe = cred
            else:
                resting.append(cred)
        if probe is not None:
            probe._probing = True
            # Until it answers, nobody else probes it; if no answer ever comes, the next
            # recheck is one backoff step later.
            probe.until = now + _backoff(probe.strikes + 1)
        first = self._pick(usable)
        rest = sorted((c for c in usable if c is not first), key=lambda c: -c.current)
        resting.sort(key=lambda c: c.until)
        head = [probe] if probe is not None else []
        return head + ([first] if first is not None else []) + rest + resting

    def _pick(self, usable: list[Credential]) -> Credential | None:
        """nginx's smooth weighted round-robin: each adds its weight, the highest is picked
        and gives back the total. Picks follow the weights, evenly spread."""
        if not usable:
            return None
        total = 0
        best = usable[0]
        for cred in usable:
            cred.current += cred.weight
            total += cred.weight
            if cred.current > best.current:
                best = cred
        best.current -= total
        return best

    def succeeded(self, cred: Credential) -> None:
        now = self._clock()
        cred.last_used = now
        cred._count(now, ok=True)
        cred._probing = False
        cred.strikes = 0
        if cred.state != ACTIVE:
            cred.until = 0.0
            self._set(cred, ACTIVE, now)

    def failed(self, cred: Credential, status: int | None, retry_after_s: float | None) -> None:
        """A try that failed: `status` is the upstream's HTTP status (None: no answer, such
        as a connect failure or a timeout)."""
        now = self._clock()
        cred.last_used = now
        cred._count(now, ok=False)
        cred._probing = False
        cred.last_error = _describe(status)
        if status in (401, 403):
            cred.strikes += 1
            cred.until = now + _backoff(cred.strikes)
            self._set(cred, DISABLED, now, force=True)
        elif status == 429:
            wait = DEFAULT_COOL_S if retry_after_s is None else retry_after_s
            cred.until = now + max(0.0, min(wait, MAX_COOL_S))
            if cred.state != DISABLED:
                self._set(cred, COOLING, now, force=True)

    def _set(self, cred: Credential, state: str, now: float, *, force: bool = False) -> None:
        if cred.state == state and not force:
            return
        before, cred.state = cred.state, state
        log.info(
            "credential_state",
            provider=cred.provider,
            credential=cred.id,
            label=cred.label,
            before=before,
            after=state,
            until_ms=int(cred.until * 1000) if cred.until > now else None,
            reason=cred.last_error if state != ACTIVE else None,
        )
        if self._on_change is not None:
            self._on_change(cred)


def _backoff(strikes: int) -> float:
    steps: int = min(max(strikes - 1, 0), 16)
    return min(RECHECK_BASE_S * float(2**steps), RECHECK_MAX_S)


def _describe(status: int | None) -> str:
    if status is None:
        return "no answer (connect failure or timeout)"
    if status in (401, 403):
        return f"the upstream refused the key ({status})"
    if status == 429:
        return "the upstream rate-limited the key (429)"
    return f"the upstream failed with status {status}"
