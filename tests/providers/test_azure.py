"""The azure format: OpenAI's bodies at per-deployment URLs, keyed by `api-key`."""

from __future__ import annotations

import orjson

from hubproxy.config import ProviderSettings
from hubproxy.providers import make
from hubproxy.providers.azure.provider import AzureProvider
from hubproxy.providers.openai.provider import OpenAIStream

BASE = "https://contoso.openai.azure.com"


def provider(**kw: object) -> AzureProvider:
    return AzureProvider(ProviderSettings(name="az", type="azure", base_url=BASE, **kw))  # type: ignore[arg-type]


def test_chat_url_body_and_headers() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    req = provider().chat_request(body, "my-gpt4o", stream=False)
    assert req.url == f"{BASE}/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    sent = orjson.loads(req.body)
    assert sent["model"] == "my-gpt4o" and sent["messages"] == body["messages"]
    assert provider().auth_headers("secret") == {"api-key": "secret"}
    assert "Authorization" not in provider().auth_headers("secret")


def test_stream_asks_for_usage_like_openai() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    req = provider().chat_request(body, "dep", stream=True)
    assert orjson.loads(req.body)["stream_options"] == {"include_usage": True}
    assert isinstance(provider().chat_stream(body), OpenAIStream)


def test_api_version_headers_and_quoting() -> None:
    custom = provider(api_version="2025-04-01-preview", headers={"x-ms-useragent": "hub"})
    req = custom.chat_request({"messages": []}, "dep/with space", stream=False)
    assert req.url == (
        f"{BASE}/openai/deployments/dep%2Fwith%20space/chat/completions"
        "?api-version=2025-04-01-preview"
    )
    assert req.headers == {"x-ms-useragent": "hub"}


def test_embeddings_url() -> None:
    req = provider().embeddings_request({"input": ["a", "b"]}, "embed-small")
    assert req.url == f"{BASE}/openai/deployments/embed-small/embeddings?api-version=2024-10-21"
    assert orjson.loads(req.body) == {"input": ["a", "b"], "model": "embed-small"}


def test_registered_and_errors_read_like_openai() -> None:
    p = make(ProviderSettings(name="az", type="azure", base_url=BASE))
    assert isinstance(p, AzureProvider)
    limited = (
        b'{"error": {"code": "429", "message": "Requests to the ChatCompletions_Create'
        b' Operation have exceeded call rate limit."}}'
    )
    assert p.error(429, limited).status == 429
    filtered = (
        b'{"error": {"message": "The response was filtered", "type": null, "param": "prompt",'
        b' "code": "content_filter", "status": 400}}'
    )
    err = p.error(400, filtered)
    assert (err.status, err.code, err.param) == (400, "content_filter", "prompt")
