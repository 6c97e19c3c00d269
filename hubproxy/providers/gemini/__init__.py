"""Google Gemini's wire format: generateContent and its stream, and batchEmbedContents."""

from hubproxy.providers.gemini.provider import GeminiProvider

__all__ = ["GeminiProvider"]
