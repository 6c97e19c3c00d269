"""Money: rates × usage → micro-credits, exactly, in integers. Pure.

1 credit = 1,000,000 micro-credits. A rate is credits per 1M tokens, which is the same number
as micro-credits per token; it may have up to six decimals, so it is kept as an integer count
of millionths (`0.15` → 150_000). A call's cost is summed exactly in those units and rounded
UP to a whole micro-credit once, at the end: a call never costs less than it consumed, and at
most one micro-credit more.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from hubproxy.errors import BadRequest
from hubproxy.money import MICRO, PLACES, format_amount, parse_amount
from hubproxy.providers.base import Usage


@dataclass(frozen=True, slots=True)
class Rate:
    """A model's price. Token rates are millionths of a credit per 1M tokens (= millionths of a
    micro-credit per token); `per_image` is micro-credits per image."""

    input: int
    output: int
    cached_input: int | None = None  # None: cached input tokens cost the input rate
    per_image: int = 0

    @classmethod
    def parse(
        cls,
        input: Any,
        output: Any,
        cached_input: Any = None,
        per_image: Any = 0,
    ) -> Rate:
        return cls(
            parse_amount(input, "input"),
            parse_amount(output, "output"),
            None if cached_input is None else parse_amount(cached_input, "cached_input"),
            parse_amount(per_image, "per_image"),
        )

    def strings(self) -> dict[str, str | None]:
        """As stored and shown: decimal strings of credits."""
        return {
            "input": format_amount(self.input),
            "output": format_amount(self.output),
            "cached_input": None if self.cached_input is None else format_amount(self.cached_input),
            "per_image": format_amount(self.per_image),
        }


def cost(rate: Rate, usage: Usage, images: int = 0) -> int:
    """What a call consumed, in micro-credits, rounded up. Cache writes (Anthropic) are priced
    as input: there is no separate rate for them."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_rate = rate.input if rate.cached_input is None else rate.cached_input
    millionths = (
        (usage.prompt_tokens - cached) * rate.input
        + cached * cached_rate
        + usage.completion_tokens * rate.output
    )
    return -(-millionths // MICRO) + images * rate.per_image


def hold(rate: Rate, prompt_tokens: int, max_output_tokens: int, images: int = 0) -> int:
    """The most a call may cost, held before it goes upstream: the whole prompt estimate at the
    input rate (no cache discount assumed), every allowed output token, and its images."""
    return cost(rate, Usage(prompt_tokens, max_output_tokens), images)


def rate_with_margin(unit_cost: Any, margin_percent: Any, credit_price: Any) -> int:
    """rate = unit_cost × (1 + margin%) / credit_price, in millionths, rounded UP so that a
    margin is never shaved by rounding. `unit_cost` is money per 1M tokens; `credit_price` is
    the money one credit sells for."""
    try:
        unit, margin, price = (Decimal(str(v)) for v in (unit_cost, margin_percent, credit_price))
    except InvalidOperation:
        raise BadRequest("unit cost, margin and credit price must be decimal numbers.") from None
    if not all(v.is_finite() for v in (unit, margin, price)) or unit < 0 or price <= 0:
        raise BadRequest("unit cost must be >= 0 and credit price > 0.")
    if margin < -100:
        raise BadRequest("a margin below -100% would make a negative rate.")
    rate = unit * (1 + margin / 100) / price
    return int(rate.scaleb(PLACES).to_integral_value(rounding=ROUND_CEILING))
