"""Anthropic's Messages API wire format: the `anthropic` provider type and the /v1/messages adapter.

Outbound (OpenAI-format client, Anthropic upstream): `AnthropicProvider`, whose request
translation lives in anthropic_request.py and stream translation in anthropic_stream.py.
Inbound (Anthropic-format client, any upstream): the functions re-exported from
anthropic_inbound.py, plus `AnthropicPassthroughStream` when the upstream is Anthropic too.
"""

from __future__ import annotations

import orjson

from hubproxy.config import ProviderSettings
from hubproxy.errors import (
    BadRequest,
    HubError,
    UpstreamError,
    from_upstream,
    provider_path,
    upstream_not_found,
)
from hubproxy.providers.anthropic.inbound import (
    MessagesStreamFromOpenAI,
    anthropic_error_body,
    anthropic_error_event,
    messages_reply_from_openai,
    openai_request_from_messages,
)
from hubproxy.providers.anthropic.request import messages_body
from hubproxy.providers.anthropic.stream import (
    AnthropicPassthroughStream,
    AnthropicStream,
    error_of,
    finish_reason,
    usage_of,
)
from hubproxy.providers.base import JSON, Reply, UpstreamRequest
from hubproxy.providers.openai.chat import completion, tool_call_json
from hubproxy.providers.openai.provider import loads, wants_usage

__all__ = [  # re-exported by the package
    "AnthropicPassthroughStream",
    "AnthropicProvider",
    "AnthropicStream",
    "MessagesStreamFromOpenAI",
    "anthropic_error_body",
    "anthropic_error_event",
    "messages_reply_from_openai",
    "openai_request_from_messages",
]

DEFAULT_VERSION = "2023-06-01"


class AnthropicProvider:
    """Chat against `base_url` (…/v1) in Anthropic's format. There are no embeddings."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._url = f"{settings.base_url}/messages"
        # An explicit header (e.g. anthropic-beta, or a pinned anthropic-version) wins.
        self._headers = {
            "anthropic-version": settings.api_version or DEFAULT_VERSION,
            **settings.headers,
        }

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def chat_request(self, body: JSON, model: str, stream: bool) -> UpstreamRequest:
        return UpstreamRequest(
            self._url, orjson.dumps(messages_body(body, model, stream)), self._headers
        )

    def messages_request(self, body: JSON, model: str) -> UpstreamRequest:
        """An Anthropic-format client's own request, sent as it is but for the model name."""
        return UpstreamRequest(self._url, orjson.dumps({**body, "model": model}), self._headers)

    def chat_reply(self, body: bytes) -> Reply:
        obj = loads(body, "JSON")
        if not isinstance(obj, dict) or not isinstance(obj.get("content"), list):
            raise UpstreamError("The upstream answer has no content.", code="bad_upstream_response")
        text: list[str] = []
        thinking: list[str] = []
        calls: list[JSON] = []
        for block in obj["content"]:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text" and isinstance(block.get("text"), str):
                text.append(block["text"])
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                thinking.append(block["thinking"])
            elif kind == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                cid, name = block.get("id"), block.get("name")
                calls.append(
                    tool_call_json(
                        None,
                        cid if isinstance(cid, str) else f"toolu_{len(calls)}",
                        name if isinstance(name, str) else "",
                        arguments,
                    )
                )
        message: JSON = {"role": "assistant", "content": "".join(text) if text else None}
        if thinking:
            message["reasoning_content"] = "".join(thinking)
        if calls:
            message["tool_calls"] = calls
        message["refusal"] = None
        usage = usage_of(obj.get("usage"))
        mid, model = obj.get("id"), obj.get("model")
        out = completion(
            mid if isinstance(mid, str) else "chatcmpl-anthropic",
            model if isinstance(model, str) else "",
            message,
            finish_reason(obj.get("stop_reason")),
            usage,
        )
        return Reply(out, usage)

    def count_tokens_request(self, body: JSON, model: str) -> UpstreamRequest:
        """An Anthropic-format client's count_tokens request, as it is but for the model."""
        return UpstreamRequest(
            f"{self._url}/count_tokens", orjson.dumps({**body, "model": model}), self._headers
        )

    def count_tokens_reply(self, body: bytes) -> int:
        """The input_tokens of a count_tokens answer (a 502 if it has none)."""
        obj = loads(body, "JSON")
        count = obj.get("input_tokens") if isinstance(obj, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise UpstreamError(
                "The upstream answer has no input_tokens.", code="bad_upstream_response"
            )
        return count

    def messages_reply(self, body: bytes) -> Reply:
        """An Anthropic answer for an Anthropic-format client: the bytes as they are, and usage."""
        obj = loads(body, "JSON")
        if not isinstance(obj, dict):
            raise UpstreamError(
                "The upstream answer is not an object.", code="bad_upstream_response"
            )
        return Reply(body, usage_of(obj.get("usage")))

    def chat_stream(self, body: JSON) -> AnthropicStream:
        return AnthropicStream(include_usage=wants_usage(body))

    def passthrough_stream(self) -> AnthropicPassthroughStream:
        return AnthropicPassthroughStream()

    def embeddings_request(self, body: JSON, model: str) -> UpstreamRequest:
        raise BadRequest(
            "Anthropic has no embeddings endpoint: route embeddings to another provider.",
            code="unsupported_endpoint",
        )

    def embeddings_reply(self, body: bytes) -> Reply:
        raise BadRequest("Anthropic has no embeddings endpoint.", code="unsupported_endpoint")

    def error(self, status: int, body: bytes, *, path: str = "") -> HubError:
        """`path`: the URL path the answer is for, when the caller passes it."""
        return anthropic_error(status, body, provider_path(self.settings.base_url, path))


def anthropic_error(status: int, body: bytes, where: str = "") -> HubError:
    """An Anthropic error answer: {"type": "error", "error": {"type", "message"}}. A 404 for
    the path itself (Anthropic says not_found_error "Not Found"; another server, anything not
    in that shape) is the provider's base_url at fault: 502. A model it does not know stays a
    404 ("model: claude-x")."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    err = obj.get("error") if isinstance(obj, dict) else None
    if status == 404 and (not isinstance(err, dict) or err.get("message") in ("Not Found", "")):
        return upstream_not_found(where)
    if isinstance(err, dict):
        return error_of(err, status)
    return from_upstream(status, body[:500].decode("utf-8", "replace").strip())
