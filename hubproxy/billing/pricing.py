"""Prices and amounts from what a caller sends: rate tables, the margin rule, signed credit
amounts, and the fields a caller may set. Pure; the admin API and the CLI both use it."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hubproxy import money
from hubproxy.billing import prices
from hubproxy.errors import BadRequest, HubError, Unprocessable

KINDS = ("grant", "adjustment", "refund")
MAX_AMOUNT = 10**9 * money.MICRO  # one grant: a billion credits
MAX_BALANCE = 10**18  # micro-credits; far below SQLite's 2**63 integers
MAX_RATE = 10**6 * money.MICRO  # a million credits per 1M tokens (or per image)
MAX_RATES = 1000  # entries in one change
MEDIA_FIELDS = ("per_image_variants", "per_1m_chars", "per_second", "per_mb")
RATE_FIELDS = frozenset(
    {"model", "type", "input", "output", "cached_input", "per_image", *MEDIA_FIELDS}
)
TYPES = ("chat", "embedding", "image", "audio")


def only(body: dict[str, Any], allowed: frozenset[str], where: str = "") -> None:
    """Refuse (422) a field the caller may not set, such as a balance or a role: nothing of
    the request is applied."""
    for name in body:
        if name not in allowed:
            raise Unprocessable(
                f"'{where}{name}' cannot be set here; allowed: {', '.join(sorted(allowed))}.",
                code="field_not_allowed",
                param=where + name,
            )


def signed_amount(value: Any, *, negative_ok: bool) -> int:
    """Decimal credits → micro-credits; a leading minus only where negative_ok. Never 0."""
    if value is None:
        raise BadRequest("Missing required parameter: 'amount'.", param="amount")
    sign = 1
    if isinstance(value, str) and value.strip().startswith("-"):
        sign, value = -1, value.strip()[1:]
    elif isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        sign, value = -1, -value
    if sign < 0 and not negative_ok:
        raise BadRequest(
            "'amount' must be positive; use kind 'adjustment' to take credits.", param="amount"
        )
    try:
        micro = money.parse_amount(value, "amount")
    except BadRequest as exc:
        exc.param = "amount"
        raise
    if not 0 < micro <= MAX_AMOUNT:
        raise BadRequest("'amount' must be more than 0 and at most 1000000000.", param="amount")
    return sign * micro


def entries(body: dict[str, Any], name: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(where, model, type, entry) of each item of body[name], checked for shape."""
    items = body.get(name)
    if not isinstance(items, list) or not items or len(items) > MAX_RATES:
        raise BadRequest(f"'{name}' must be a list of 1 to {MAX_RATES} objects.", param=name)
    out, seen = [], set()
    for i, item in enumerate(items):
        where = f"{name}[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"'{where}' must be an object.", param=where)
        only(item, RATE_FIELDS, where + ".")
        model, kind = item.get("model"), item.get("type", "chat")
        provider, sep, rest = model.partition("/") if isinstance(model, str) else ("", "", "")
        if not (sep and provider and rest):
            raise BadRequest(f"'{where}.model' must be 'provider/model'.", param=where + ".model")
        if kind not in TYPES:
            raise BadRequest(
                f"'{where}.type' must be one of {', '.join(TYPES)}.", param=where + ".type"
            )
        if (model, kind) in seen:
            raise BadRequest(f"'{where}': {model} ({kind}) is listed twice.", param=where)
        seen.add((model, kind))
        for field in ("input", "output") if kind in ("chat", "embedding") else ():
            if item.get(field) is None:
                raise BadRequest(f"Missing '{where}.{field}'.", param=f"{where}.{field}")
        out.append((where, str(model), str(kind), item))
    return out


def checked(where: str, make: Callable[..., prices.Rate], *args: Any) -> prices.Rate:
    """The rate `make(*args)` builds, with `where` in its error, and within bounds."""
    try:
        rate = make(*args)
    except HubError as exc:
        raise BadRequest(f"{where}: {exc.message}", param=where) from None
    values = (rate.input, rate.output, rate.cached_input or 0, rate.per_image, rate.per_1m_chars,
              rate.per_second, rate.per_mb, *(v for _, v in rate.per_image_variants))  # fmt: skip
    if max(values) > MAX_RATE:
        raise BadRequest(f"{where}: a rate may be at most 1000000 credits.", param=where)
    return rate


def given_rates(body: dict[str, Any]) -> dict[tuple[str, str], prices.Rate]:
    return {
        (model, kind): checked(where, _given, e) for where, model, kind, e in entries(body, "rates")
    }


def _given(e: dict[str, Any]) -> prices.Rate:
    return prices.Rate.from_row({**e, "input": e.get("input", 0), "output": e.get("output", 0)})


def margin_rates(body: dict[str, Any]) -> dict[tuple[str, str], prices.Rate]:
    """rate = unit cost × (1 + margin%) / credit price, for each price of each model."""
    margin = body.get("margin_percent")
    if margin is None:
        raise BadRequest("Missing required parameter: 'margin_percent'.", param="margin_percent")
    margin = _number(margin, "margin_percent")
    price = _number(body.get("credit_price", "1"), "credit_price")

    def rate(e: dict[str, Any]) -> prices.Rate:
        def of(v: Any) -> int:
            # Bounded before the arithmetic: a huge exponent would build a huge integer.
            return prices.rate_with_margin(money.decimal(v, "unit cost"), margin, price)

        cached = e.get("cached_input")
        variants = prices.parse_variants(e.get("per_image_variants"))
        return prices.Rate(
            of(e.get("input", 0)), of(e.get("output", 0)), None if cached is None else of(cached),
            of(e.get("per_image", 0)),
            tuple((k, of(prices.money_text(v))) for k, v in variants),
            of(e.get("per_1m_chars", 0)), of(e.get("per_second", 0)), of(e.get("per_mb", 0)),
        )  # fmt: skip

    return {
        (model, kind): checked(where, rate, e)
        for where, model, kind, e in entries(body, "unit_costs")
    }


def _number(value: Any, name: str) -> Decimal:
    try:
        return money.decimal(value, f"'{name}'")
    except BadRequest as exc:
        exc.param = name
        raise
