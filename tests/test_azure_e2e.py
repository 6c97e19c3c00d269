"""The openai SDK through hubproxy to Azure OpenAI (type = "azure"), end to end.

The upstream is tests/fakes/azure_upstream.py: the OpenAI fake served at Azure's
per-deployment URLs, which answers only with the right `api-key` header and `api-version`.
The route's model is the deployment name; the bodies are OpenAI's, so they pass through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from tests.conftest import Hub, HubFactory
from tests.e2e import provider, read_stream, sdk, settled
from tests.fakes.azure_upstream import API_VERSION, KEY, azure_app
from tests.fakes.openai_upstream import USAGE, WORDS, FakeOpenAI
from tests.fakes.wire import serve

MESSAGES = [{"role": "user", "content": "hi there"}]


@pytest.fixture
async def azure() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    async with serve(azure_app(fake)) as url:
        try:
            yield fake, url
        finally:
            fake.release.set()


@pytest.fixture
async def hub(hub_factory: HubFactory, azure: tuple[FakeOpenAI, str]) -> Hub:
    _, url = azure
    return await hub_factory(
        [
            provider("azure", "azure", url, KEY, api_version=API_VERSION),
            provider("azuredefault", "azure", url, KEY),  # the default api-version is the GA one
            provider("wrongkey", "azure", url, "azure-WRONG-key-0000000000000"),
        ]
    )


@pytest.mark.parametrize("name", ["azure", "azuredefault"])
async def test_answer_goes_to_the_deployment_url_with_api_key(
    hub: Hub, azure: tuple[FakeOpenAI, str], name: str
) -> None:
    fake, _ = azure
    reply = await sdk(hub).chat.completions.create(model=f"{name}/ok", messages=MESSAGES)
    assert reply.choices[0].message.content == "".join(WORDS)
    seen = fake.requests[-1]
    assert seen.path == "/openai/deployments/ok/chat/completions"
    assert seen.headers["api-key"] == KEY
    assert "Authorization" not in seen.headers and hub.key not in str(seen.headers)
    assert seen.body == {"model": "ok", "messages": MESSAGES}
    [row] = hub.calls()
    assert (row["status"], row["provider"], row["model"]) == ("success", name, "ok")
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (
        USAGE["prompt_tokens"], USAGE["completion_tokens"], 0,
    )  # fmt: skip


async def test_stream_passes_through_with_the_usage_tapped(
    hub: Hub, azure: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = azure
    got = await read_stream(
        await sdk(hub).chat.completions.create(model="azure/ok", messages=MESSAGES, stream=True)
    )
    assert got.text == "".join(WORDS) and got.finish == "stop"
    assert got.usage is None, "the usage chunk the gateway asked for reached the client"
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    [row] = hub.calls()
    assert (row["prompt_tokens"], row["completion_tokens"], row["usage_estimated"]) == (11, 4, 0)


@pytest.mark.parametrize(
    ("model", "status", "error"),
    [
        ("azure/e429", 429, openai.RateLimitError),
        ("azure/e400", 400, openai.BadRequestError),
        ("azure/e500", 502, openai.InternalServerError),
        ("wrongkey/ok", 502, openai.InternalServerError),
    ],
)
async def test_errors_map_like_openai(
    hub: Hub, model: str, status: int, error: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error) as info:
        await sdk(hub).chat.completions.create(model=model, messages=MESSAGES)
    assert info.value.status_code == status
    assert "Access denied" not in str(info.value.body) and "SECRET" not in str(info.value.body)
    [row] = await settled(hub)
    assert row["status"] == "failed"


async def test_error_mid_stream_raises_in_the_sdk(hub: Hub) -> None:
    stream = await sdk(hub).chat.completions.create(
        model="azure/cut", messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    [row] = await settled(hub)
    assert row["status"] == "failed"


async def test_embeddings_go_to_the_deployment(hub: Hub, azure: tuple[FakeOpenAI, str]) -> None:
    fake, _ = azure
    result = await sdk(hub).embeddings.create(model="azure/embed-small", input=["a", "b"])
    assert [d.embedding for d in result.data] == [[0.1, 0.2, 0.3]] * 2
    assert fake.requests[-1].path == "/openai/deployments/embed-small/embeddings"
    [row] = hub.calls()
    assert (row["type"], row["prompt_tokens"], row["usage_estimated"]) == ("embedding", 4, 0)
