"""What AIGNE Hub's routes answer, as msgspec types the OpenAPI document is written from: the
replies of v1 and v2, the model list, status and balance, and AIGNE's error shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from hubproxy.api.schema import Answer

# --- errors ----------------------------------------------------------------------------------


class AigneErrorBody(Answer):
    message: str
    type: Annotated[str, Meta(description="NOT_ENOUGH for a 402; else the error's code.")]
    timestamp: Annotated[str, Meta(description="When, in ISO 8601 (UTC).")]
    link: Annotated[str, Meta(description="Where to buy credits or subscribe.")] | UnsetType = UNSET


class AigneError(Answer):
    """AIGNE's error shape, which every error of AIGNE's routes takes."""

    error: AigneErrorBody


# --- replies ---------------------------------------------------------------------------------


class AigneUsage(Answer):
    inputTokens: int
    outputTokens: int
    cacheCreationInputTokens: int | UnsetType = UNSET
    cacheReadInputTokens: int | UnsetType = UNSET
    modelCallId: str | UnsetType = UNSET
    aigneHubCredits: Annotated[float, Meta(description="The call's debit, in credits.")] | (
        UnsetType
    ) = UNSET
    creditPrefix: str | UnsetType = UNSET


class AigneToolCallOut(Answer):
    id: str
    type: str
    function: dict[str, Any]


class AigneChatReply(Answer):
    model: str
    usage: AigneUsage
    text: str | UnsetType = UNSET
    thoughts: str | UnsetType = UNSET
    json: Annotated[Any, Meta(description="The answer, for a JSON response format.")] = UNSET
    toolCalls: list[AigneToolCallOut] | UnsetType = UNSET


class AigneFlatToolCall(Answer):
    id: str | None
    type: str
    function: Any


class AigneCompletionsReply(Answer):
    role: Literal["assistant"]
    text: str
    content: str
    toolCalls: list[AigneFlatToolCall] | UnsetType = UNSET


class AigneEmbedding(Answer):
    object: str
    index: int
    embedding: list[float] | str


class AigneEmbeddings(Answer):
    """OpenAI's embeddings answer."""

    object: str
    data: list[AigneEmbedding]
    model: str
    usage: dict[str, Any]


class AigneImage(Answer):
    base64: str | None
    b64_json: str | None
    b64Json: str | None
    url: str | None


class AigneImages(Answer):
    images: list[AigneImage]
    data: list[AigneImage]
    model: str
    usage: AigneUsage


class AigneTypedImage(Answer):
    type: Literal["file", "url"]
    mimeType: str
    data: Annotated[str, Meta(description="base64, for a file")] | UnsetType = UNSET
    url: str | UnsetType = UNSET


class AigneTypedImages(Answer):
    images: list[AigneTypedImage]
    model: str
    modelWithProvider: str
    usage: AigneUsage


class AppRegistered(Answer):
    id: Annotated[str, Meta(description="The app's DID.")]
    paymentLink: str


class AppSubscription(Answer):
    status: str
    active: bool
    until: str | None


class AppStatus(Answer):
    id: str
    subscription: AppSubscription
    subscriptionDetailUrl: str


class WebhookAccepted(Answer):
    ok: bool


# --- the informational routes ----------------------------------------------------------------


class MountPoint(Answer):
    title: str
    name: str
    did: str
    mountPoint: str
    status: str


class BlockletInfo(Answer):
    appName: str
    appUrl: str
    prefix: str
    componentMountPoints: list[MountPoint]


class AigneModelStatus(Answer):
    available: bool


class AigneModel(Answer):
    """A routed model and its rates, in credits per token (per image for an image model)."""

    key: Annotated[str, Meta(description="provider/model")]
    model: str
    type: str
    provider: str
    providerId: str
    input_credits_per_token: Annotated[str, Meta(description="A decimal number of credits.")]
    output_credits_per_token: Annotated[str, Meta(description="A decimal number of credits.")]
    modelMetadata: dict[str, Any]
    status: AigneModelStatus
    providerDisplayName: str


class AigneStatus(Answer):
    available: bool
    error: str | UnsetType = UNSET
    code: Annotated[int, Meta(description="402: credits are short; 403: no rate.")] | (
        UnsetType
    ) = UNSET
    link: str | UnsetType = UNSET
    type: Literal["NOT_ENOUGH", "NO_RATE"] | UnsetType = UNSET


class AigneBalance(Answer):
    """The caller's credits, as decimal strings."""

    balance: Annotated[str, Meta(description="What is left.")]
    currency: str
    total: Annotated[str, Meta(description="What was granted, in all.")]
    grantCount: int
    pendingCredit: Annotated[str, Meta(description="What calls in flight hold.")]
