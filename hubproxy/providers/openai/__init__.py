"""OpenAI's wire format (and every OpenAI-compatible server): requests, replies, streams.

Also OpenAI's Responses API, both ways: `responses` (its requests onto the chat core, and the
public names of the Response object, stream and pass-through modules beside it).
"""

from hubproxy.providers.openai.provider import OpenAIProvider, loads, usage_of, wants_usage

__all__ = ["OpenAIProvider", "loads", "usage_of", "wants_usage"]
