"""Key scopes on every call: the model allow-list (403) and the spend cap (402).

The cap is held like the user's balance: a call is admitted only if the key's spend in the
current UTC day or month, plus what its calls in flight hold, plus this call's credit hold
(billing/credits.py: the same amount) stays within the cap; at settle the hold is released
and the debit counted. Admission and the hold happen in one step of the event loop, so calls
at once cannot overshoot the cap by more than the balance can be overshot (calls that cost
more than they held: see billing/credits.py). With billing off nothing is held or debited,
and the cap never binds. A key's expiry is checked earlier, at authentication.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hubproxy import money
from hubproxy.billing.credits import Hold
from hubproxy.errors import Forbidden, PaymentRequired
from hubproxy.gateway.auth import Scope
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route
from hubproxy.limits.budgets import Budgets, period_end
from hubproxy.store.clock import now_ms


@dataclass(slots=True)
class Ticket:
    key_id: int
    scope: Scope
    held: int = 0  # micro-credits this call holds against the key's cap


class KeyScopes:
    """The addon. Its `held` hook is told the call's credit hold (again if a fallback moves
    the call to another target) and may refuse it."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets

    def admit(self, ctx: CallContext, route: Route, kind: str, estimate: int) -> Ticket | None:
        key_id = ctx.principal.key_id
        if key_id is None:  # an AIGNE v1 app signs its calls: no key, no key scope
            return None
        scope = ctx.principal.scope
        _check_model(scope, route)
        return Ticket(key_id, scope)

    def held(self, ticket: Ticket | None, route: Route, hold: Hold | None) -> None:
        if ticket is None:
            return
        _check_model(ticket.scope, route)
        budgets, key_id, scope = self.budgets, ticket.key_id, ticket.scope
        budgets.release(key_id, ticket.held)  # the hold of the target it had before, if any
        ticket.held = 0
        amount = 0 if hold is None else hold.amount
        if scope.budget is not None:
            now = now_ms()
            spent = budgets.spent(key_id, scope.period, now)
            held = budgets.held(key_id)
            if spent + held + amount > scope.budget:
                resets = datetime.fromtimestamp(period_end(scope.period, now) / 1000, UTC)
                raise PaymentRequired(
                    f"This key's budget of {money.format_amount(scope.budget)} credits a "
                    f"{scope.period} is used up: {money.format_amount(spent)} spent and "
                    f"{money.format_amount(held)} held by calls in flight, and this call "
                    f"needs up to {money.format_amount(amount)}. The cap resets at "
                    f"{resets:%Y-%m-%d %H:%M} UTC.",
                    code="key_budget_exceeded",
                )
        budgets.hold(key_id, amount)
        ticket.held = amount

    def settle(self, ticket: Ticket | None, call: Call | None) -> None:
        if ticket is None:
            return
        self.budgets.release(ticket.key_id, ticket.held)
        ticket.held = 0
        if call is not None and call.credits:
            self.budgets.add(ticket.key_id, call.created_at, call.credits)

    def headers(self, ticket: Ticket | None) -> dict[str, str]:
        return {}


def _check_model(scope: Scope, route: Route) -> None:
    model = f"{route.provider}/{route.model}"
    if not scope.allows(model):
        raise Forbidden(
            f"This key may not use the model '{model}'; it may use: {', '.join(scope.models)}.",
            code="model_not_allowed",
            param="model",
        )
