"""JSON text byte-identical to npm's json-stable-stringify, the serialiser AIGNE signs. Pure.

json-stable-stringify writes an object's keys sorted (JavaScript's default sort: by UTF-16
code units, not code points), no whitespace, and every string and number as JavaScript's
`JSON.stringify` does:
- strings keep non-ASCII characters as they are, U+2028 and U+2029 included; they escape
  `"`, `\\`, the control characters (`\\b \\f \\n \\r \\t`, else `\\u00xx` in lower-case hex)
  and a lone surrogate (`\\udxxx`);
- numbers are IEEE doubles written in their shortest round-trip form, without a fraction
  when they are whole (`1.0` → `1`), in exponent form from 1e21 up and below 1e-6
  (`1e+21`, `1e-7`); -0 is `0`. An integer past 2**53 is first rounded to a double, as
  JavaScript's JSON.parse does.
"""

from __future__ import annotations

import math
import re
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t"}  # fmt: skip
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')


def stable_stringify(value: Any) -> str:
    """`value` (what a JSON parser gives: dict, list, str, int, float, bool, None) as
    json-stable-stringify writes it. A dict value of None is written as null (JSON has no
    undefined: leave a key out to omit it)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int | float):
        out.append(js_number(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_order)):
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, got {type(key).__name__}")
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot stringify {type(value).__name__}")


def _utf16_order(key: Any) -> bytes:
    """JavaScript compares strings by UTF-16 code units; big-endian UTF-16 bytes sort alike.
    (Lone surrogates are kept as they are.)"""
    return str(key).encode("utf-16-be", "surrogatepass")


def _string(text: str) -> str:
    if not _NEEDS_ESCAPE.search(text):
        return '"' + text + '"'
    return '"' + _NEEDS_ESCAPE.sub(_escape, _pair_surrogates(text)) + '"'


def _pair_surrogates(text: str) -> str:
    """Python may hold a surrogate pair as two code points (from a JSON \\ud83d\\ude00 escape it
    is joined already, but not from every source): join pairs so only lone ones are escaped."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def js_number(value: int | float) -> str:
    """A number as JavaScript writes it (ECMA-262 Number::toString; node gives the same)."""
    number = float(value)
    if not math.isfinite(number):
        return "null"  # JSON.stringify writes NaN and Infinity as null
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    digits, exponent = _shortest(abs(number))
    k = len(digits)
    n = exponent + k  # the decimal point sits after n digits
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def _shortest(number: float) -> tuple[str, int]:
    """(digits, exponent) with number == int(digits) × 10**exponent, digits the shortest that
    round-trip (Python's repr finds the same digits as JavaScript)."""
    text = repr(number)
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    digits = (whole + fraction).lstrip("0")
    exponent = (int(exp) if exp else 0) - len(fraction)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, exponent
