"""Money as integer micro-credits, and the one way to read and write it as decimal credits."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from hubproxy.errors import BadRequest

MICRO = 1_000_000  # micro-credits per credit
PLACES = 6  # decimals a rate or an amount may have
_QUANTUM = Decimal(1).scaleb(-PLACES)


def parse_amount(value: Any, what: str = "amount") -> int:
    """A decimal number of credits ("25", "0.15", 3) → micro-credits, exactly. More than six
    decimals, a negative number, a float's noise or anything else is refused, never rounded."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f'{what} must be a decimal number of credits, e.g. "0.15".')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadRequest(f"{what} must be a decimal number of credits, got {value!r}.") from None
    if not number.is_finite() or number < 0:
        raise BadRequest(f"{what} must be a finite number of at least 0, got {value!r}.")
    scaled = number.scaleb(PLACES)
    if scaled != scaled.to_integral_value():
        raise BadRequest(f"{what} has more than {PLACES} decimals: {value!r}.")
    return int(scaled)


def format_amount(micro: int) -> str:
    """Micro-credits as a decimal string of credits, without trailing zeros: 1500000 → "1.5"."""
    text = str(Decimal(micro).scaleb(-PLACES).quantize(_QUANTUM))
    return text.rstrip("0").rstrip(".") if "." in text else text


__all__ = ["MICRO", "PLACES", "format_amount", "parse_amount"]
