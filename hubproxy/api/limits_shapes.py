"""What the limits admin routes (a key's scope and limits, a user's limits) take and answer, as
msgspec types: the registry decodes with them and the OpenAPI document is written from them.
The values' own rules (a budget's period, an expiry in the future) are hubproxy.limits.fields',
shared with the command line."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, UnsetType

from hubproxy.api.schema import Answer, Struct, says
from hubproxy.limits.fields import MAX_LIMIT

LIMIT_ERROR = (
    f"'{{param}}' must be a whole number from 0 (no limit) to {MAX_LIMIT}, or null (the "
    "default), got {value!r}."
)
Limit = Annotated[
    Annotated[int, Meta(ge=0, le=MAX_LIMIT)] | Annotated[str, Meta(pattern=r"^\s*[0-9]{1,13}\s*$")],
    says(LIMIT_ERROR),
]
DEFAULT = "; 0: no limit; null (or left out): the [limits] default."


class LimitsChange(Struct):
    """All three limits: one left out goes back to the default, like one sent as null."""

    rpm: Annotated[Limit, Meta(description="Requests a minute" + DEFAULT)] | None = None
    tpm: Annotated[Limit, Meta(description="Tokens a minute" + DEFAULT)] | None = None
    concurrency: Annotated[Limit, Meta(description="Calls at once" + DEFAULT)] | None = None


class ScopeChange(Struct):
    """A key's scope: a field left out stays as it is; null clears it."""

    expires_at: (
        Annotated[
            str | None,
            says("'expires_at' must be a date or a date and time, e.g. 2027-01-01 or "
                 "2027-01-01T12:00:00Z, got {value!r}.", "When the key stops working (UTC "
                 "unless it says otherwise)."),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    ttl: (
        Annotated[
            str | None,
            says("'ttl' must be a number and a unit (s, m, h, d or w), e.g. 30d, got "
                 "{value!r}.", "Or an expiry as a time to live from now, e.g. 30d."),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    models: (
        Annotated[
            list[str] | str | None,
            says("'models' must be a list of globs over provider/model, such as "
                 "'openai/*,anthropic/claude-*', got {value!r}.", "The models the key may "
                 "use: globs over provider/model (a list, or comma-separated); null: any."),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    budget: (
        Annotated[
            str | None,
            says("'budget' must be credits per day or month, e.g. 5/day or 20/month, got "
                 "{value!r}.", "A spend cap in credits per UTC day or month, e.g. 5/day; "
                 "null: none."),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip


class Limits(Answer):
    """Each null follows the [limits] default; 0 is no limit."""

    rpm: int | None
    tpm: int | None
    concurrency: int | None


class KeyScope(Answer):
    id: int
    user: str
    label: str | None
    prefix: str
    active: bool
    expires_at: str | None
    models: list[str] | None
    budget: Annotated[str | None, Meta(description="e.g. 5/day")]
    limits: Limits


class UserLimits(Answer):
    id: int
    name: str
    limits: Limits
