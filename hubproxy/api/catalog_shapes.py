"""What the control-plane routes (/api/admin providers, credentials, models, aliases) take and
answer, as msgspec types. Decoding enforces these; the checks that need more than a type (a
base_url's address, a header that would carry a key, an alias chain) follow in
hubproxy.catalog.validate, on the decoded body."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from hubproxy.api.schema import Answer, Struct, says

ProviderName = Annotated[
    str,
    says("'name' must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a "
         "letter or digit, e.g. openai.", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$"),
]  # fmt: skip
ProviderType = Annotated[
    Literal["openai", "anthropic", "gemini", "azure", "fake"],
    says("'type' must be one of: openai, anthropic, gemini, azure, fake; got {value!r}."),
]
BaseUrl = Annotated[
    str,
    says("'base_url' must be an http(s) URL, e.g. https://api.openai.com/v1.",
         "The upstream's URL; it may not point at a private address unless "
         "[security] allow_private_upstreams is set. Empty only for type fake."),
]  # fmt: skip
Headers = Annotated[
    dict[str, str],
    says("'headers' must be an object of at most 32 names to strings.",
         "Extra headers sent upstream; never a key (add a credential instead).", max_length=32),
]  # fmt: skip
ApiVersion = Annotated[str, says("'api_version' must be a short string.", max_length=64)]
Seconds = Annotated[
    float, says("'{param}' must be a number of seconds, more than 0 and at most 3600.",
                gt=0, le=3600)
]  # fmt: skip
Flag = Annotated[bool, says("'{param}' must be true or false.")]


class NewProvider(Struct):
    name: ProviderName
    type: ProviderType
    base_url: BaseUrl = ""
    headers: Headers | UnsetType = UNSET
    api_version: ApiVersion = ""
    connect_timeout_s: Seconds = 10.0
    idle_timeout_s: Seconds = 120.0
    enabled: Flag = True


class ProviderChange(Struct):
    """Only what is sent changes; `name` cannot (catalogue rows and aliases refer to it)."""

    name: ProviderName | UnsetType = UNSET
    type: ProviderType | UnsetType = UNSET
    base_url: BaseUrl | UnsetType = UNSET
    headers: Headers | UnsetType = UNSET
    api_version: ApiVersion | UnsetType = UNSET
    connect_timeout_s: Seconds | UnsetType = UNSET
    idle_timeout_s: Seconds | UnsetType = UNSET
    enabled: Flag | UnsetType = UNSET


Label = Annotated[
    str,
    says("'label' must be 1 to 64 letters, digits, '.', '_', ':', '@' or '-', e.g. prod-1.",
         pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"),
]  # fmt: skip
SecretKey = Annotated[
    str,
    says("'key' must be the provider's API key: one line of at most 4096 characters.",
         "Write-only: answers show it masked.", min_length=1, max_length=4096),
]  # fmt: skip
Weight = Annotated[
    int, says("'weight' must be a whole number from 1 to 1000; got {value!r}.", ge=1, le=1000)
]


class NewCredential(Struct):
    label: Label
    key: SecretKey
    weight: Weight = 1
    enabled: Flag | UnsetType = UNSET


class CredentialChange(Struct):
    label: Label | UnsetType = UNSET
    key: SecretKey | UnsetType = UNSET
    weight: Weight | UnsetType = UNSET
    enabled: Flag | UnsetType = UNSET


class CredentialTest(Struct):
    model: (
        Annotated[str, Meta(description="The model to call (default: one the provider offers).")]
        | UnsetType
    ) = UNSET


ModelType = Annotated[
    Literal["chat", "embedding", "image", "audio"],
    says("'type' must be one of: chat, embedding, image, audio."),
]
DisplayName = Annotated[str, says("'display_name' must be at most 200 characters.", max_length=200)]
ContextWindow = Annotated[
    int,
    says("'context_window' must be a whole number of tokens, e.g. 128000, or null.",
         gt=0, le=10**8),
]  # fmt: skip


class NewModel(Struct):
    model: Annotated[
        str, says("'model' must be provider/model, e.g. openai/gpt-4o-mini; got {value!r}.")
    ]
    type: ModelType = "chat"
    display_name: DisplayName = ""
    context_window: ContextWindow | None = None
    enabled: Flag = True


class ModelChange(Struct):
    """Only what is sent changes; `model` cannot (remove the row and add the new model)."""

    type: ModelType | UnsetType = UNSET
    display_name: DisplayName | UnsetType = UNSET
    context_window: ContextWindow | UnsetType | None = UNSET
    enabled: Flag | UnsetType = UNSET


class AliasDocument(Struct):
    """The whole alias document: each name to a target or an ordered list of targets
    (provider/model or another alias), tried in order before the first byte."""

    aliases: Annotated[
        dict[str, str | list[str]],
        says("'aliases' must be an object of names to a target or a list of targets, e.g. "
             '{"fast": ["groq/llama-3.1-8b-instant", "openai/gpt-4o-mini"]}.'),
    ]  # fmt: skip


# --- answers ---------------------------------------------------------------------------------


class Provider(Answer):
    id: str
    name: str
    type: str
    base_url: str
    headers: dict[str, str]
    api_version: str
    connect_timeout_s: float
    idle_timeout_s: float
    enabled: bool
    source: Literal["config", "database"]
    models: list[str]


class ProviderList(Answer):
    object: Literal["list"]
    data: list[Provider]


class CredentialState(Answer):
    id: str
    label: str
    key: Annotated[str, Meta(description="Masked: its first 3 and last 4 characters.")]
    weight: int
    state: Literal["active", "cooling", "disabled"]
    last_error: str | None
    last_used_at: int | None
    resting_until: int | None
    successes_last_hour: int
    failures_last_hour: int


class Credential(CredentialState):
    provider: str
    enabled: bool


class CredentialList(Answer):
    object: Literal["list"]
    data: list[Credential]


class ProviderDetail(Provider):
    credentials: list[Credential]


class Deleted(Answer):
    id: str
    deleted: Literal[True]
    name: str | UnsetType = UNSET
    model: str | UnsetType = UNSET


class ProbeAnswer(Answer):
    ok: bool
    status: int | None
    latency_ms: int
    error: str | None
    model: str
    credential: CredentialState


class Availability(Answer):
    calls: int
    success_rate: float | None
    p50_latency_ms: float | None
    last_error: str | None


class CatalogModel(Answer):
    id: str | None
    model: str
    provider: str
    type: str
    display_name: str
    context_window: int | None
    enabled: bool
    source: Literal["config", "database"]
    availability: Availability


class ModelList(Answer):
    object: Literal["list"]
    data: list[CatalogModel]


class Aliases(Answer):
    aliases: dict[str, list[str]]
    resolved: Annotated[
        dict[str, list[str]], Meta(description="Each alias's provider/model targets, in order.")
    ]
