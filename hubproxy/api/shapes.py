"""What the account and billing routes (/api/user, /api/admin users, credits, rates) take and
answer, as msgspec types: the handlers decode with them and the OpenAPI document is written
from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType, field

from hubproxy.api.schema import Answer, Struct, says

# --- query parameters ------------------------------------------------------------------------

WHEN = (
    "An ISO date (2024-05-01; as `to`, through the end of that day), an ISO datetime (UTC "
    "unless it has an offset) or Unix milliseconds."
)
Since = Annotated[str, Meta(description="From this moment on. " + WHEN)]
Until = Annotated[str, Meta(description="Before this moment. " + WHEN)]
Limit = Annotated[
    int,
    says("'limit' must be a whole number from 1 to 500.", "At most this many (default 50).",
         ge=1, le=500),
]  # fmt: skip
UserName = Annotated[str, Meta(description="Only this user's.")]


class UsageQuery(Struct):
    from_: Since | UnsetType = field(default=UNSET, name="from")
    to: Until | UnsetType = UNSET
    group_by: (
        Annotated[
            Literal["hour", "day", "model", "key", "user"],
            says("'group_by' must be one of: hour, day, model, key, user.", "Default: day."),
        ]
        | UnsetType
    ) = UNSET


class AdminUsageQuery(UsageQuery):
    user: UserName | UnsetType = UNSET


class CallsQuery(Struct):
    cursor: (
        Annotated[
            str,
            says("'cursor' must be a call id from 'next_cursor'.", "The page after this call.",
                 pattern="^[0-9a-f]{1,64}$"),
        ]
        | UnsetType
    ) = UNSET  # fmt: skip
    limit: Limit | UnsetType = UNSET
    status: (
        Annotated[
            Literal["processing", "success", "failed"],
            says("'status' must be one of: processing, success, failed."),
        ]
        | UnsetType
    ) = UNSET
    model: (
        Annotated[str, says("'model' must be 'provider/model'.", pattern=r"^[^/]+/[\s\S]+$")]
        | UnsetType
    ) = UNSET
    from_: Since | UnsetType = field(default=UNSET, name="from")
    to: Until | UnsetType = UNSET
    format: (
        Annotated[
            Literal["json", "csv"],
            says("'format' must be json or csv.", "csv: every matching call, without 'limit'."),
        ]
        | UnsetType
    ) = UNSET


class AdminCallsQuery(CallsQuery):
    user: UserName | UnsetType = UNSET


class GrantsQuery(Struct):
    limit: Limit | UnsetType = UNSET


class LedgerQuery(Struct):
    user: UserName | UnsetType = UNSET
    limit: Limit | UnsetType = UNSET
    cursor: (
        Annotated[
            str,
            says(
                "'cursor' must be an id from 'next_cursor'.",
                "The page after this entry.",
                pattern=r"^[0-9]{1,18}$",
            ),
        ]
        | UnsetType
    ) = UNSET


# --- request bodies --------------------------------------------------------------------------

Money = Annotated[
    str | int | float,
    says("'{param}' must be a decimal number of credits, e.g. \"0.15\".",
         "Credits as a decimal string (\"0.15\") or a JSON number."),
]  # fmt: skip


class Grant(Struct):
    """Credits for a user: a grant or a refund (positive), or an adjustment (either sign)."""

    amount: Money
    user: Annotated[str, says("'user' must be a user name.", min_length=1)]
    kind: Annotated[
        Literal["grant", "adjustment", "refund"],
        says("'kind' must be one of: grant, adjustment, refund."),
    ] = "grant"
    note: Annotated[
        str, says("'note' must be a string of at most 1000 characters.", max_length=1000)
    ] = ""


class RateEntry(Struct):
    model: Annotated[str, says("'{param}' must be 'provider/model'.", pattern=r"^[^/]+/[\s\S]+$")]
    type: Annotated[
        Literal["chat", "embedding", "image", "audio"],
        says("'{param}' must be one of chat, embedding, image, audio."),
    ] = "chat"
    input: Money | UnsetType | None = UNSET
    output: Money | UnsetType | None = UNSET
    cached_input: Money | UnsetType | None = UNSET
    per_image: Money | UnsetType | None = UNSET
    per_image_variants: dict[str, str | int | float] | list[str] | str | UnsetType | None = UNSET
    per_1m_chars: Money | UnsetType | None = UNSET
    per_second: Money | UnsetType | None = UNSET
    per_mb: Money | UnsetType | None = UNSET


Entries = Annotated[
    list[Annotated[RateEntry, says("'{param}' must be an object.")]],
    says("'{param}' must be a list of 1 to 1000 objects.", min_length=1, max_length=1000),
]


class RatesChange(Struct):
    """Either `rates` as given, or `unit_costs` with `margin_percent` (and `credit_price`):
    rate = unit cost × (1 + margin%) / credit price."""

    rates: Entries | UnsetType = UNSET
    unit_costs: Entries | UnsetType = UNSET
    margin_percent: Money | UnsetType = UNSET
    credit_price: Money | UnsetType = UNSET
    dry_run: Annotated[bool, says("'dry_run' must be true or false.")] = False

    @classmethod
    def allowed(cls, sent: dict[str, Any]) -> set[str]:
        if "unit_costs" in sent:
            return {"unit_costs", "margin_percent", "credit_price", "dry_run"}
        return {"rates", "dry_run"}


Role = Annotated[
    Literal["owner", "admin", "member"], says("'role' must be one of: owner, admin, member.")
]


class NewUser(Struct):
    name: Annotated[
        str,
        says("'name' must be 1 to 64 letters, digits or . _ @ -, starting with a letter or "
             "digit.", pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"),
    ]  # fmt: skip
    role: Role = "member"


class RoleChange(Struct):
    role: Role


class NewKey(Struct):
    label: Annotated[
        str, says("'label' must be a string of at most 100 characters.", max_length=100)
    ] = ""


# --- answers ---------------------------------------------------------------------------------


class Balance(Answer):
    """Integer micro-credits, each with a decimal string of credits beside it."""

    user: str
    balance: int
    balance_credits: str
    held: int
    held_credits: str
    available: int
    available_credits: str


class UsageRow(Answer):
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    credits: int
    credits_decimal: str
    start: str | UnsetType | None = UNSET
    model: str | UnsetType = UNSET
    key_id: int | UnsetType | None = UNSET
    user_id: int | UnsetType | None = UNSET


class UsageTotals(Answer):
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    credits: int
    credits_decimal: str


class Usage(Answer):
    object: Literal["usage"]
    user: str | None
    group_by: str
    from_: str = field(name="from")
    to: str
    data: list[UsageRow]
    totals: UsageTotals


class Call(Answer):
    id: str
    request_id: str | None
    user: str | None
    model: str
    type: str
    stream: bool
    status: Literal["processing", "success", "failed"]
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    usage_estimated: bool
    credits: int | None
    credits_decimal: str
    duration_ms: int | None
    ttfb_ms: int | None
    upstream_status: int | None
    error: str | None
    created_at: str | None


class CallList(Answer):
    object: Literal["list"]
    data: list[Call]
    next_cursor: str | None


class Granted(Answer):
    user: str
    kind: str
    amount: int
    amount_credits: str
    note: str
    actor: str
    balance: int
    balance_credits: str
    held: int
    held_credits: str
    available: int
    available_credits: str


class Rate(Answer):
    model: str
    provider: str
    type: str
    input: str | None
    output: str | None
    cached_input: str | None
    per_image: str | None
    per_image_variants: str | None
    per_1m_chars: str | None
    per_second: str | None
    per_mb: str | None
    updated_at: str | None


class RateList(Answer):
    object: Literal["list"]
    data: list[Rate]


class RateChange(Answer):
    model: str
    type: str
    old: dict[str, str | None] | None
    new: dict[str, str | None]
    changed: bool


class RateChanges(Answer):
    dry_run: bool
    applied: bool
    data: list[RateChange]


class UserRow(Answer):
    id: int
    name: str
    role: str
    created_at: str | None
    keys: int
    balance: int
    balance_credits: str
    held: int
    held_credits: str
    available: int
    available_credits: str


class UserList(Answer):
    object: Literal["list"]
    data: list[UserRow]


class User(Answer):
    id: int
    name: str
    role: str


class UserCreated(User):
    key: Annotated[str, Meta(description="The user's first key: its only appearance.")]


class Key(Answer):
    id: int
    label: str | None
    prefix: str
    created_at: str | None
    revoked_at: str | None
    active: bool


class OwnKey(Key):
    current: Annotated[bool, Meta(description="Whether this request came with this key.")]


class KeyCreated(OwnKey):
    key: Annotated[str, Meta(description="The new key: its only appearance.")]


class KeyList(Answer):
    object: Literal["list"]
    data: list[Key]


class OwnKeyList(Answer):
    object: Literal["list"]
    data: list[OwnKey]


class GrantRow(Answer):
    id: int
    kind: str
    amount: int
    amount_credits: str
    note: str | None
    created_at: str | None


class GrantList(Answer):
    object: Literal["list"]
    user: str
    data: list[GrantRow]


class LedgerGrant(Answer):
    id: int
    user: str
    kind: str
    amount: int
    amount_credits: str
    note: str | None
    actor: str | None  # the admin who made it; None when the CLI did
    via: Literal["api", "cli"]
    created_at: str | None


class GrantHistory(Answer):
    object: Literal["list"]
    data: list[LedgerGrant]
    next_cursor: str | None
