"""Money as integer micro-credits, and the one way to read and write it as decimal credits."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from hubproxy.errors import BadRequest

MICRO = 1_000_000  # micro-credits per credit
PLACES = 6  # decimals a rate or an amount may have
_QUANTUM = Decimal(1).scaleb(-PLACES)
# Bounds on a number as written, checked before any arithmetic: "1e999999" is a short string
# whose integer has a million digits (seconds of CPU to build), and Decimal overflows on it.
MAX_CHARS = 64
_EXPONENT = 18  # |x| < 10**18 and, unless 0, >= 10**-18: beyond any amount, rate or price


def decimal(value: Any, what: str = "amount") -> Decimal:
    """A finite decimal number from a string or a JSON number, of at most MAX_CHARS characters
    and within 18 orders of magnitude of 1 (or 0); anything else is a 400 that names `what`."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(f'{what} must be a decimal number, e.g. "0.15".')
    text = str(value).strip()
    if len(text) > MAX_CHARS:
        raise BadRequest(f"{what} must be a decimal number of at most {MAX_CHARS} characters.")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BadRequest(f"{what} must be a decimal number, got {value!r}.") from None
    if not number.is_finite():
        raise BadRequest(f"{what} must be a finite number, got {value!r}.")
    # adjusted() is the exponent of the leading digit: read off the number, no arithmetic.
    if number and not -_EXPONENT <= number.adjusted() < _EXPONENT:
        raise BadRequest(
            f"{what} is out of range (from 1e-{_EXPONENT} to 1e{_EXPONENT}), got {value!r}."
        )
    return number


def parse_amount(value: Any, what: str = "amount") -> int:
    """A decimal number of credits ("25", "0.15", 3) → micro-credits, exactly. More than six
    decimals, a negative number, a float's noise or anything else is refused, never rounded."""
    number = decimal(value, what)
    if number < 0:
        raise BadRequest(f"{what} must be a finite number of at least 0, got {value!r}.")
    if number and number.adjusted() < -PLACES:  # "1e-999999": surely more than six decimals
        raise BadRequest(f"{what} has more than {PLACES} decimals: {value!r}.")
    scaled = number.scaleb(PLACES)
    if scaled != scaled.to_integral_value():
        raise BadRequest(f"{what} has more than {PLACES} decimals: {value!r}.")
    return int(scaled)


def format_amount(micro: int) -> str:
    """Micro-credits as a decimal string of credits, without trailing zeros: 1500000 → "1.5"."""
    text = str(Decimal(micro).scaleb(-PLACES).quantize(_QUANTUM))
    return text.rstrip("0").rstrip(".") if "." in text else text


__all__ = ["MICRO", "PLACES", "decimal", "format_amount", "parse_amount"]
