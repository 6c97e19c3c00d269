"""Several keys per provider: taken in turn, and a refused or rate-limited key fails over."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import HubFactory
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def provider(base_url: str) -> dict[str, object]:
    return {"name": "up", "type": "openai", "base_url": base_url,
            "api_keys_env": ["HUB_TEST_KEY_A", "HUB_TEST_KEY_B"]}  # fmt: skip


async def test_keys_rotate_and_a_revoked_one_fails_over(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = upstream
    monkeypatch.setenv("HUB_TEST_KEY_A", "sk-good-aaaaaaaaaaaa")
    monkeypatch.setenv("HUB_TEST_KEY_B", "sk-revoked-bbbbbbbbbb")
    hub = await hub_factory([provider(base_url)])
    client = hub.openai()
    for _ in range(4):
        reply = await client.chat.completions.create(model="up/ok", messages=MESSAGES)
        assert reply.choices[0].message.content
    used = [r.headers["Authorization"] for r in fake.requests]
    # B was tried once, refused, and rests: every call succeeded on A, none reached the client.
    assert used.count("Bearer sk-revoked-bbbbbbbbbb") == 1
    assert used.count("Bearer sk-good-aaaaaaaaaaaa") == 4
    assert [r["status"] for r in hub.calls()] == ["success"] * 4


async def test_every_key_limited_passes_the_429_on(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = upstream
    monkeypatch.setenv("HUB_TEST_KEY_A", "sk-limited-aaaaaaaaaa")
    monkeypatch.setenv("HUB_TEST_KEY_B", "sk-limited-bbbbbbbbbb")
    hub = await hub_factory([provider(base_url)])
    with pytest.raises(openai.RateLimitError) as info:
        await hub.openai().chat.completions.create(model="up/ok", messages=MESSAGES)
    assert info.value.response.headers["Retry-After"] == "7"
    assert len(fake.requests) == 2, "both keys were tried before giving up"
    [row] = hub.calls()
    assert row["status"] == "failed" and row["upstream_status"] == 429


async def test_the_upstream_sees_hubproxys_user_agent_only(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = upstream
    monkeypatch.setenv("HUB_TEST_KEY_A", "sk-good-aaaaaaaaaaaa")
    monkeypatch.setenv("HUB_TEST_KEY_B", "sk-good-bbbbbbbbbbbb")
    hub = await hub_factory([provider(base_url)])
    client = hub.openai()
    await client.chat.completions.create(model="up/ok", messages=MESSAGES)
    stream = await client.chat.completions.create(model="up/ok", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    for seen in fake.requests:
        agents = [v for k, v in seen.headers.items() if k.lower() == "user-agent"]
        assert agents == ["hubproxy/0.1"], "neither the client's agent nor aiohttp's"


async def test_an_upstreams_cookies_are_never_sent_back(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake sets a cookie with every stream (as Cloudflare does in front of OpenAI): a
    gateway must not keep it and replay it on later calls, which may be other users'."""
    fake, base_url = upstream
    monkeypatch.setenv("HUB_TEST_KEY_A", "sk-good-aaaaaaaaaaaa")
    monkeypatch.setenv("HUB_TEST_KEY_B", "sk-good-bbbbbbbbbbbb")
    by_name = base_url.replace("127.0.0.1", "localhost")  # a name: a jar keeps its cookies
    hub = await hub_factory([provider(by_name)])
    client = hub.openai()
    for _ in range(2):
        stream = await client.chat.completions.create(model="up/ok", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
    assert len(fake.requests) == 2
    assert all("cookie" not in (k.lower() for k in seen.headers) for seen in fake.requests)
