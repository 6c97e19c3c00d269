"""The wire formats, registered in one table: `type = "..."` in a provider entry names one."""

from __future__ import annotations

from collections.abc import Callable

from hubproxy.config import ProviderSettings
from hubproxy.providers.anthropic.provider import AnthropicProvider
from hubproxy.providers.azure.provider import AzureProvider
from hubproxy.providers.base import Provider
from hubproxy.providers.gemini.provider import GeminiProvider
from hubproxy.providers.openai.provider import OpenAIProvider

FORMATS: dict[str, Callable[[ProviderSettings], Provider]] = {
    "openai": OpenAIProvider,
    "fake": OpenAIProvider,  # the demo: OpenAI's format, answered in the process
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "azure": AzureProvider,
}


def make(settings: ProviderSettings) -> Provider:
    return FORMATS[settings.type](settings)
