"""AIGNE Hub's v2 chat formats from and to the hub's OpenAI chat format: requests (request.py),
whole replies and errors (reply.py), and streams (stream.py). Pure: the faces do the HTTP."""

from hubproxy.providers.aigne.reply import (
    aigne_usage,
    chat_reply,
    completions_reply,
    credits_number,
    error_body,
)
from hubproxy.providers.aigne.request import DEFAULT_MODEL, chat_request, completions_request
from hubproxy.providers.aigne.stream import (
    ChatStreamFromOpenAI,
    CompletionsStreamFromOpenAI,
    Settles,
    completions_error_event,
    error_event,
)

__all__ = [
    "DEFAULT_MODEL",
    "ChatStreamFromOpenAI",
    "CompletionsStreamFromOpenAI",
    "Settles",
    "aigne_usage",
    "chat_reply",
    "chat_request",
    "completions_error_event",
    "completions_reply",
    "completions_request",
    "credits_number",
    "error_body",
    "error_event",
]
