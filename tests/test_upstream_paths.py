"""An upstream's 404 for a path it does not serve is the operator's base_url at fault (502
upstream_not_found, naming the path); its 404 for a model it does not have stays a 404."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest

from hubproxy.config import ProviderSettings, Secret
from hubproxy.providers import make
from tests.conftest import HubFactory
from tests.e2e import SDK_TIMEOUT, provider, settled
from tests.fakes import anthropic_upstream, azure_upstream, gemini_upstream
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.wire import data, serve

MESSAGES = [{"role": "user", "content": "hi"}]

# What each provider answers, as its documentation and issue threads show it.
OPENAI_BAD_PATH = orjson.dumps(
    {"error": {"message": "Invalid URL (POST /chat/completions)",
               "type": "invalid_request_error", "param": None, "code": None}}
)  # fmt: skip
OPENAI_NO_MODEL = orjson.dumps(
    {"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.",
               "type": "invalid_request_error", "param": None, "code": "model_not_found"}}
)  # fmt: skip
AZURE_BAD_PATH = b'{"error": {"code": "404", "message": "Resource not found"}}'
AZURE_NO_DEPLOYMENT = orjson.dumps(
    {"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource "
               "does not exist. If you created the deployment within the last 5 minutes, "
               "please wait a moment and try again."}}
)  # fmt: skip
VLLM_NO_MODEL = orjson.dumps(
    {"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError",
     "param": None, "code": 404}
)  # fmt: skip
ANTHROPIC_BAD_PATH = b'{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}'
ANTHROPIC_NO_MODEL = (
    b'{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}'
)
GEMINI_NO_MODEL = orjson.dumps(
    {"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta",
               "status": "NOT_FOUND"}}
)  # fmt: skip
HTML_404 = b"<!DOCTYPE html><html><title>Error 404 (Not Found)!!1</title></html>"


def settings(kind: str, base_url: str) -> ProviderSettings:
    return ProviderSettings(name="p", type=kind, base_url=base_url, api_keys=(Secret("k"),))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("openai", OPENAI_BAD_PATH), ("openai", b"404: Not Found"), ("openai", HTML_404),
        ("openai", b'{"detail":"Not Found"}'), ("openai", b""), ("azure", AZURE_BAD_PATH),
        ("anthropic", ANTHROPIC_BAD_PATH), ("anthropic", HTML_404), ("gemini", HTML_404),
    ],
)  # fmt: skip
def test_a_404_for_the_path_is_a_502_naming_it(kind: str, body: bytes) -> None:
    p = make(settings(kind, "https://api.example.com/api"))
    err = p.error(404, body, path="/api/chat/completions")
    assert (err.status, err.code) == (502, "upstream_not_found")
    expected = "/chat/completions" if body == OPENAI_BAD_PATH else "/api/chat/completions"
    assert f"for {expected}: check its base_url" in err.message
    # Without the path, the base_url's path, under which every endpoint lives.
    bare = p.error(404, body)
    assert (bare.status, bare.code) == (502, "upstream_not_found")
    assert ("/chat/completions" if body == OPENAI_BAD_PATH else "/api/…") in bare.message


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("openai", OPENAI_NO_MODEL), ("openai", VLLM_NO_MODEL), ("azure", AZURE_NO_DEPLOYMENT),
        ("anthropic", ANTHROPIC_NO_MODEL), ("anthropic", data("anthropic/error_not_found.json")),
        ("gemini", GEMINI_NO_MODEL),
    ],
)  # fmt: skip
def test_a_404_for_a_model_stays_a_404(kind: str, body: bytes) -> None:
    err = make(settings(kind, "https://api.example.com/v1")).error(404, body, path="/v1/x")
    assert err.status == 404 and err.code != "upstream_not_found"


# --- end to end: a base_url without /v1 ------------------------------------------------------


async def test_an_openai_base_url_without_v1_is_a_502(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await hub_factory([provider("up", "openai", base_url.removesuffix("/v1"), "sk-x")])
    with pytest.raises(openai.APIStatusError) as info:
        await hub.openai(timeout=SDK_TIMEOUT).chat.completions.create(
            model="up/ok", messages=MESSAGES
        )
    assert info.value.status_code == 502
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_not_found"
    assert "check its base_url" in body["message"]
    assert fake.requests == []  # the fake serves /v1/chat/completions only
    (call,) = await settled(hub)
    assert call["status"] == "failed" and call["upstream_status"] == 404


async def test_an_unknown_model_upstream_is_still_a_404(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """The fake answers model e404 as OpenAI answers a model it does not have."""
    _, base_url = upstream
    hub = await hub_factory([provider("up", "openai", base_url, "sk-x")])
    with pytest.raises(openai.NotFoundError) as info:
        await hub.openai(timeout=SDK_TIMEOUT).chat.completions.create(
            model="up/e404", messages=MESSAGES
        )
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "code_404"


async def test_an_anthropic_base_url_without_v1_is_a_502(
    hub_factory: HubFactory, claude: FakeAnthropic
) -> None:
    hub = await hub_factory([provider("claude", "anthropic", claude.url, anthropic_upstream.KEY)])
    client = anthropic.AsyncAnthropic(
        base_url=hub.url, api_key=hub.key, max_retries=0, timeout=SDK_TIMEOUT
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(
            model="claude/claude-sonnet-4-5", max_tokens=10, messages=MESSAGES
        )
    assert info.value.status_code == 502
    assert "check its base_url" in str(info.value.body)


async def test_an_azure_wrong_api_version_is_a_502(hub_factory: HubFactory) -> None:
    fake = FakeOpenAI()
    async with serve(azure_upstream.azure_app(fake)) as url:
        hub = await hub_factory(
            [provider("az", "azure", url, azure_upstream.KEY, api_version="1999-01-01")]
        )
        with pytest.raises(openai.APIStatusError) as info:
            await hub.openai(timeout=SDK_TIMEOUT).chat.completions.create(
                model="az/ok", messages=MESSAGES
            )
        assert info.value.status_code == 502


async def test_a_gemini_base_url_without_v1beta_is_a_502(
    hub_factory: HubFactory, gemini: FakeGemini
) -> None:
    hub = await hub_factory([provider("g", "gemini", gemini.url, gemini_upstream.KEY)])
    with pytest.raises(openai.APIStatusError) as info:
        await hub.openai(timeout=SDK_TIMEOUT).chat.completions.create(
            model="g/gemini-2.0-flash", messages=MESSAGES
        )
    assert info.value.status_code == 502


async def test_the_502_names_the_exact_path(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    _, base_url = upstream
    hub = await hub_factory([provider("up", "openai", base_url.removesuffix("/v1"), "sk-x")])
    with pytest.raises(openai.APIStatusError) as info:
        await hub.openai(timeout=SDK_TIMEOUT).chat.completions.create(
            model="up/ok", messages=MESSAGES
        )
    assert isinstance(info.value.body, dict)
    assert "for /chat/completions: check its base_url" in info.value.body["message"]
