"""OpenAI's wire format (and every OpenAI-compatible server): requests, replies, streams."""

from hubproxy.providers.openai.provider import OpenAIProvider, loads, usage_of, wants_usage

__all__ = ["OpenAIProvider", "loads", "usage_of", "wants_usage"]
