"""Addons: policies that plug into every call without touching the core (rate limits, key
scopes and budgets, metrics), with explicit hooks called in the order they are listed.

`admit` runs when a call is admitted, before its credits are held; raising a HubError
refuses the call (429, 403, 402 ...). Whatever it returns is the addon's ticket for that call,
and `settle` receives it exactly once: with the finished Call (its usage, credits and status
filled in), or with None if the call was refused later in admission and never started.
`headers` adds response headers to the answer (rate-limit state, for instance).

An addon may also have a `held(ticket, route, hold)` hook: told the call's credit hold (a
billing.credits.Hold, or None when billing is off) once it is held, and again at each
fallback target the call moves to; raising a HubError refuses the call (a key's spend cap).
"""

from __future__ import annotations

from typing import Any, Protocol

from hubproxy.gateway.context import CallContext
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route


class Addon(Protocol):
    def admit(self, ctx: CallContext, route: Route, kind: str, estimate: int) -> Any:
        """`estimate`: the prompt tokens estimated for the call, plus the output it may write."""
        ...

    def settle(self, ticket: Any, call: Call | None) -> None: ...

    def headers(self, ticket: Any) -> dict[str, str]: ...
