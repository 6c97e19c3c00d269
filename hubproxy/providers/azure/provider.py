"""Azure OpenAI's wire format: OpenAI's bodies at per-deployment URLs, keyed by `api-key`."""

from __future__ import annotations

from urllib.parse import quote

from hubproxy.config import ProviderSettings
from hubproxy.providers.base import JSON, UpstreamRequest
from hubproxy.providers.openai.provider import OpenAIProvider

DEFAULT_API_VERSION = "2024-10-21"  # the GA data-plane version


class AzureProvider(OpenAIProvider):
    """`base_url` is the resource endpoint (https://NAME.openai.azure.com); the route's model
    is the deployment name. The body keeps `model`, which Azure ignores."""

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._api_version = quote(settings.api_version or DEFAULT_API_VERSION, safe="")

    def _url(self, deployment: str, operation: str) -> str:
        return (
            f"{self.settings.base_url}/openai/deployments/{quote(deployment, safe='')}"
            f"/{operation}?api-version={self._api_version}"
        )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def chat_request(self, body: JSON, model: str, stream: bool) -> UpstreamRequest:
        request = super().chat_request(body, model, stream)
        return UpstreamRequest(self._url(model, "chat/completions"), request.body, request.headers)

    def embeddings_request(self, body: JSON, model: str) -> UpstreamRequest:
        request = super().embeddings_request(body, model)
        return UpstreamRequest(self._url(model, "embeddings"), request.body, request.headers)
