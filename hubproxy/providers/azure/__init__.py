"""Azure OpenAI: OpenAI's format, with deployments in the path and an api-key header."""

from hubproxy.providers.azure.provider import AzureProvider

__all__ = ["AzureProvider"]
