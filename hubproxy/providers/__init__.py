"""The wire formats, registered in one table: `type = "..."` in a provider entry names one."""

from __future__ import annotations

from collections.abc import Callable

from hubproxy.config import ProviderSettings
from hubproxy.providers.anthropic import AnthropicProvider
from hubproxy.providers.azure import AzureProvider
from hubproxy.providers.base import Provider
from hubproxy.providers.fake import FakeProvider
from hubproxy.providers.gemini import GeminiProvider
from hubproxy.providers.openai import OpenAIProvider

FORMATS: dict[str, Callable[[ProviderSettings], Provider]] = {
    "openai": OpenAIProvider,
    "fake": FakeProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "azure": AzureProvider,
}


def make(settings: ProviderSettings) -> Provider:
    return FORMATS[settings.type](settings)
