"""Money: rates × usage → micro-credits, exactly, in integers. Pure.

1 credit = 1,000,000 micro-credits. A rate is credits per 1M tokens (or characters), which is
the same number as micro-credits per token; it may have up to six decimals, so it is kept as
an integer count of millionths (`0.15` → 150_000). A call's cost is summed exactly in those
units and rounded UP to a whole micro-credit once, at the end: a call never costs less than it
consumed, and at most one micro-credit more. Media prices (per image, second or MB) are whole
micro-credits; an audio duration is counted in milliseconds, rounded up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

import orjson

from hubproxy.errors import BadRequest
from hubproxy.money import MICRO, PLACES, format_amount, parse_amount
from hubproxy.providers.base import MediaUsage, Usage


@dataclass(frozen=True, slots=True)
class Rate:
    """A model's price. Token rates, and `per_1m_chars`, are millionths of a credit per 1M
    units (= millionths of a micro-credit per token or character); `per_image`, each variant,
    `per_second` and `per_mb` are micro-credits per image, second or MB. A variant, keyed
    "size/quality" (e.g. "1024x1792/hd"), overrides `per_image` for images of that kind."""

    input: int
    output: int
    cached_input: int | None = None  # None: cached input tokens cost the input rate
    per_image: int = 0
    per_image_variants: tuple[tuple[str, int], ...] = ()  # sorted by key
    per_1m_chars: int = 0
    per_second: int = 0
    per_mb: int = 0

    @classmethod
    def parse(
        cls,
        input: Any,
        output: Any,
        cached_input: Any = None,
        per_image: Any = 0,
        *,
        per_image_variants: Any = None,
        per_1m_chars: Any = 0,
        per_second: Any = 0,
        per_mb: Any = 0,
    ) -> Rate:
        return cls(
            parse_amount(input, "input"),
            parse_amount(output, "output"),
            None if cached_input is None else parse_amount(cached_input, "cached_input"),
            parse_amount(per_image, "per_image"),
            parse_variants(per_image_variants),
            parse_amount(per_1m_chars, "per_1m_chars"),
            parse_amount(per_second, "per_second"),
            parse_amount(per_mb, "per_mb"),
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rate:
        """A rate as stored (model_rates) or configured: decimal strings, variants as JSON."""
        return cls.parse(
            row["input"], row["output"], row.get("cached_input"), row.get("per_image") or 0,
            per_image_variants=row.get("per_image_variants"),
            per_1m_chars=row.get("per_1m_chars") or 0, per_second=row.get("per_second") or 0,
            per_mb=row.get("per_mb") or 0,
        )  # fmt: skip

    def strings(self) -> dict[str, str | None]:
        """As stored and shown: decimal strings of credits; variants as a JSON object of them."""
        variants = {k: format_amount(v) for k, v in self.per_image_variants}
        return {
            "input": format_amount(self.input),
            "output": format_amount(self.output),
            "cached_input": None if self.cached_input is None else format_amount(self.cached_input),
            "per_image": format_amount(self.per_image),
            "per_image_variants": orjson.dumps(variants).decode() if variants else None,
            "per_1m_chars": format_amount(self.per_1m_chars),
            "per_second": format_amount(self.per_second),
            "per_mb": format_amount(self.per_mb),
        }

    def image_price(self, variant: str | None) -> int:
        """Micro-credits for one image of this "size/quality" (its variant, else per_image)."""
        for key, price in self.per_image_variants:
            if key == variant:
                return price
        return self.per_image


def parse_variants(value: Any) -> tuple[tuple[str, int], ...]:
    """Per-image variants from {"size/quality": credits} (or its JSON text) or a list of
    "size/quality=credits" strings (the CLI's repeated flag)."""
    if value is None or value == "" or value == {}:
        return ()
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise BadRequest("per_image_variants is not a JSON object.") from None
    if isinstance(value, list | tuple):
        pairs = [str(v).partition("=") for v in value]
        if not all(sep for _, sep, _ in pairs):
            raise BadRequest('a per-image variant is "size/quality=credits".')
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, dict):
        raise BadRequest('per_image_variants must map "size/quality" to credits.')
    out = []
    for key, price in value.items():
        size, sep, quality = str(key).partition("/")
        if not (sep and size and quality) or "/" in quality:
            raise BadRequest(f'a per-image variant is keyed "size/quality", got {key!r}.')
        out.append((str(key), parse_amount(price, f"per_image_variants[{key}]")))
    return tuple(sorted(out))


def money_text(micro: int) -> str:
    """Micro-credits as the decimal credits they were parsed from."""
    return format_amount(micro)


def cost(rate: Rate, usage: Usage, images: int = 0, media: MediaUsage | None = None) -> int:
    """What a call consumed, in micro-credits, rounded up once. Cache writes (Anthropic) are
    priced as input: there is no separate rate for them. `images` are priced at per_image;
    `media` (images of a variant, characters, seconds or MB) at its own rates."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_rate = rate.input if rate.cached_input is None else rate.cached_input
    millionths = (
        (usage.prompt_tokens - cached) * rate.input
        + cached * cached_rate
        + usage.completion_tokens * rate.output
    )
    whole = images * rate.per_image
    if media is not None:
        whole += media.images * rate.image_price(media.variant)
        millionths += media.chars * rate.per_1m_chars
        if media.milliseconds is not None and rate.per_second:
            millionths += media.milliseconds * rate.per_second * 1000  # micro/s → millionths/ms
        else:
            millionths += media.bytes * rate.per_mb  # micro per 10**6 bytes = millionths/byte
    return -(-millionths // MICRO) + whole


def hold(
    rate: Rate,
    prompt_tokens: int,
    max_output_tokens: int,
    images: int = 0,
    media: MediaUsage | None = None,
) -> int:
    """The most a call may cost, held before it goes upstream: the whole prompt estimate at the
    input rate (no cache discount assumed), every allowed output token, its images, and what
    of its media is known before (images, characters, the upload's MB)."""
    return cost(rate, Usage(prompt_tokens, max_output_tokens), images, media)


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
