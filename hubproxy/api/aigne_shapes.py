"""What AIGNE Hub's routes (v1, v2, the model list, status and balance) take, as msgspec
types: the registry checks bodies and queries against them and the OpenAPI document is written
from them (their answers: aigne_answers). They are `Open`: AIGNE's clients send more than the
hub reads, and what it reads is checked again, field by field, where the face translates it
(hubproxy.providers.aigne).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

from hubproxy.api.schema import Open, says
from hubproxy.providers.openai import images
from hubproxy.store.apps import STATUSES

# --- chat: what both chat bodies share -------------------------------------------------------

Number = float | None
OptionalText = str | None
ImageType = Annotated[str, Meta(pattern="^image/", description="Only images reach a chat model.")]


class AigneTextPart(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class AigneUrlPart(msgspec.Struct, tag_field="type", tag="url"):
    """An image by URL."""

    url: str
    mimeType: ImageType | None = None


class AigneFilePart(msgspec.Struct, tag_field="type", tag="file"):
    """An image as base64 (or a data: URL)."""

    data: str
    mimeType: ImageType | None = None


Parts = list[AigneTextPart | AigneUrlPart | AigneFilePart]
Said = Annotated[str | Parts, Meta(examples=["Hello!"])]


class AigneFunction(Open):
    name: Annotated[str, Meta(min_length=1)]
    arguments: Annotated[Any, Meta(description="An object (/api/v2/chat) or its JSON text.")] = None


class AigneToolCall(Open):
    id: str
    function: AigneFunction
    type: str = "function"


class AigneResponseFormat(Open):
    type: Literal["text", "json_object", "json_schema"]
    jsonSchema: (
        Annotated[dict[str, Any], Meta(description="{name, schema, strict}")] | UnsetType
    ) = UNSET


class AigneToolName(Open):
    name: str


class AigneToolChoice(Open):
    function: AigneToolName
    type: str = "function"


ToolChoice = Literal["auto", "none", "required"] | AigneToolChoice | None
MaxTokens = Annotated[int, says("'{param}' must be a positive integer.", ge=1)] | None
Model = Annotated[OptionalText, Meta(description="provider/model", examples=["openai/gpt-4o"])]


class AigneModelOptions(Open):
    """The model and its options; others pass and are not used."""

    model: Model = None
    temperature: Number = None
    topP: Number = None
    frequencyPenalty: Number = None
    presencePenalty: Number = None
    parallelToolCalls: bool | None = None
    reasoningEffort: str | int | None = None
    maxTokens: MaxTokens = None


class _Message(Open, tag_field="role"):
    name: OptionalText = None


class _Said(_Message, kw_only=True):
    content: Said


class AigneSystemMessage(_Said, tag="system"):
    pass


class AigneUserMessage(_Said, tag="user"):
    pass


class AigneToolMessage(_Message, tag="tool", kw_only=True):
    """A tool's result: text, or (in AIGNE's native chat) an object."""

    toolCallId: Annotated[str, Meta(min_length=1)]
    content: str | Parts | dict[str, Any] | None = None


class AigneAgentMessage(_Message, tag="agent"):
    """The model's earlier turn; a tool call's arguments are an object."""

    content: str | Parts | None = None
    toolCalls: list[AigneToolCall] | None = None


class AigneAssistantMessage(_Message, tag="assistant"):
    """The model's earlier turn; a tool call's arguments are its JSON text."""

    content: str | Parts | None = None
    toolCalls: list[AigneToolCall] | None = None


# --- POST /api/v2/chat -----------------------------------------------------------------------

Messages = Annotated[
    list[AigneSystemMessage | AigneUserMessage | AigneAgentMessage | AigneToolMessage],
    says("'{param}' must be a non-empty list of messages, each with a role of system, user, "
         "agent or tool.", min_length=1),
]  # fmt: skip


class AigneChatInput(Open):
    messages: Messages
    tools: list[dict[str, Any]] | None = None
    toolChoice: ToolChoice = None
    responseFormat: AigneResponseFormat | None = None
    modelOptions: AigneModelOptions | None = None


class AigneRunOptions(Open):
    streaming: Annotated[bool | None, Meta(description="Answer as server-sent events.")] = None


class AigneChatRequest(Open):
    """AIGNE's native chat. The model is input.modelOptions.model, else `model`, else the
    hub's default ([aigne] default_model)."""

    input: AigneChatInput
    model: Model = None
    options: AigneRunOptions | None = None


# --- POST /api/v{1,2}/chat/completions -------------------------------------------------------

FlatMessages = Annotated[
    list[AigneSystemMessage | AigneUserMessage | AigneAssistantMessage | AigneToolMessage],
    says("'{param}' must be a non-empty list of messages, each with a role of system, user, "
         "assistant or tool.", min_length=1),
]  # fmt: skip


class AigneCompletionsRequest(Open):
    """Chat completions in AIGNE's flat camelCase (not OpenAI's shape): `messages`, or a
    `prompt` for one user message. Streamed when the client accepts text/event-stream."""

    model: Model = None
    messages: FlatMessages | UnsetType = UNSET
    prompt: Annotated[str, Meta(description="Instead of messages.")] | UnsetType = UNSET
    temperature: Number = None
    topP: Number = None
    frequencyPenalty: Number = None
    presencePenalty: Number = None
    parallelToolCalls: bool | None = None
    reasoningEffort: str | int | None = None
    maxTokens: MaxTokens = None
    tools: list[dict[str, Any]] | None = None
    toolChoice: ToolChoice = None
    responseFormat: AigneResponseFormat | None = None


# --- embeddings and images -------------------------------------------------------------------

Texts = Annotated[str | list[Any], Meta(examples=[["The text to embed."]])]


class AigneEmbeddingInput(Open):
    input: Texts
    modelOptions: (
        Annotated[dict[str, Any], Meta(description="model, dimensions, encoding_format")] | None
    ) = None


class AigneEmbeddingsRequest(Open):
    """The model is input.modelOptions.model, else `model`."""

    input: Texts | AigneEmbeddingInput
    model: Model = None


if TYPE_CHECKING:
    Size: TypeAlias = str
    Quality: TypeAlias = str
else:  # the values the images call takes (hubproxy.providers.openai.images)
    Size = Literal[tuple(sorted(images.SIZES))]
    Quality = Literal[tuple(sorted(images.QUALITIES))]
Count = Annotated[int, Meta(ge=1, le=images.MAX_N)] | None
Prompt = Annotated[str, Meta(min_length=1, examples=["A lighthouse at dawn"])]


class AigneImageRequest(Open):
    """/image/generations: OpenAI's fields, with responseFormat for response_format."""

    model: Annotated[str, Meta(min_length=1, examples=["openai/dall-e-3"])]
    prompt: Prompt
    n: Count = None
    size: Size | None = None
    quality: Quality | None = None
    responseFormat: Literal["b64_json", "url"] | None = None


class AigneImageOptions(Open):
    model: Model = None
    n: Count = None
    size: Size | None = None
    quality: Quality | None = None


class AigneImageInput(Open):
    prompt: Prompt
    n: Count = None
    size: Size | None = None
    quality: Quality | None = None
    outputFileType: OptionalText = None
    modelOptions: AigneImageOptions | None = None


class AigneTypedImageRequest(Open):
    """What AIGNE's SDK's AIGNEHubImageModel sends; the model is input.modelOptions.model,
    else `model`, else openai/gpt-image-1. Editing a given image is not served."""

    input: AigneImageInput
    model: Model = None


# --- AIGNE v1: registration and the payment webhook ------------------------------------------


class AppRegistration(Open):
    publicKey: Annotated[
        str,
        says("'publicKey' must be an ed25519 public key: 0x and 64 hex digits.",
             "The app's ed25519 public key.", pattern="^(0x)?[0-9a-fA-F]{64}$"),
    ]  # fmt: skip


class SubscriptionEvent(Open):
    """The payment system's word on an app's subscription."""

    appId: Annotated[str, says("'appId' must be the app's DID.", min_length=1)]
    status: Annotated[
        Literal["none", "active", "canceled", "past_due"],
        says(f"'status' must be one of {', '.join(STATUSES)}."),
    ]
    until: Annotated[
        int | str | None,
        says("'until' must be Unix milliseconds or an ISO 8601 time.",
             "Until when it is paid: Unix milliseconds or an ISO 8601 time."),
    ] = None  # fmt: skip


# --- the informational routes ----------------------------------------------------------------


class DiscoveryQuery(Open):
    type: Annotated[str, Meta(description="json: the answer as JSON, else a script.")] | (
        UnsetType
    ) = UNSET


class ModelsQuery(Open):
    type: Annotated[str, Meta(description="Only models of this type: chat, embedding, image.")] | (
        UnsetType
    ) = UNSET


class StatusQuery(Open):
    model: Annotated[str, Meta(description="Whether this model may be called, too.")] | (
        UnsetType
    ) = UNSET
