"""Anthropic's Messages format, both ways: to an Anthropic upstream (request, stream), and
from an Anthropic-format client to any upstream (inbound, inbound_stream)."""

from hubproxy.providers.anthropic.provider import (
    AnthropicPassthroughStream,
    AnthropicProvider,
    AnthropicStream,
    MessagesStreamFromOpenAI,
    anthropic_error_body,
    anthropic_error_event,
    messages_reply_from_openai,
    openai_request_from_messages,
)

__all__ = [
    "AnthropicPassthroughStream",
    "AnthropicProvider",
    "AnthropicStream",
    "MessagesStreamFromOpenAI",
    "anthropic_error_body",
    "anthropic_error_event",
    "messages_reply_from_openai",
    "openai_request_from_messages",
]
