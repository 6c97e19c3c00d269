"""Aliases and fallbacks end to end: the openai SDK against a running hub whose alias chains a
failing target before a working one; the control plane changes what a running server routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest

from tests.conftest import Hub, HubFactory, add_key
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


async def hub_with(hub_factory: HubFactory, base_url: str, **sections: Any) -> Hub:
    return await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {
                "name": "up",
                "type": "openai",
                "base_url": base_url,
                "api_key": "sk-upstream-SECRET-key-000000001",
                "idle_timeout_s": 1.0,
            },
        ],
        **sections,
    )


async def put_aliases(hub: Hub, aliases: dict[str, list[str]]) -> None:
    root = add_key(hub.settings, "root", "admin")
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            hub.url + "/api/admin/aliases",
            json={"aliases": aliases},
            headers={"Authorization": f"Bearer {root}"},
        ) as r,  # fmt: skip
    ):
        assert r.status == 200, await r.text()


@pytest.mark.parametrize("failing", ["up/e500", "up/e429", "up/hang", "up/e401"])
@pytest.mark.parametrize("stream", [True, False])
async def test_an_alias_falls_back_to_its_next_target(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str], failing: str, stream: bool
) -> None:
    hub = await hub_with(hub_factory, upstream[1])
    await put_aliases(hub, {"fast": [failing, "up/ok"]})
    client = hub.openai()
    if stream:
        chunks = await client.chat.completions.create(
            model="fast",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
        )
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        reply = await client.chat.completions.create(model="fast", messages=MESSAGES)  # type: ignore[arg-type]
        text = reply.choices[0].message.content or ""
    assert text == "Hello from upstream ✓"
    await hub.eventually(lambda: [r["status"] for r in hub.calls()] == ["success"])
    [row] = hub.calls()
    assert (row["provider"], row["model"], row["attempts"]) == ("up", "ok", 2)


async def test_a_bad_request_is_not_passed_along_the_chain(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await hub_with(hub_factory, base_url)
    await put_aliases(hub, {"fast": ["up/e400", "up/ok"]})
    with pytest.raises(openai.BadRequestError):
        await hub.openai().chat.completions.create(model="fast", messages=MESSAGES)  # type: ignore[arg-type]
    assert [r.body["model"] for r in fake.requests] == ["e400"]
    await hub.eventually(lambda: [r["status"] for r in hub.calls()] == ["failed"])
    assert hub.calls()[0]["attempts"] == 1


async def test_no_fallback_after_the_first_byte(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, base_url = upstream
    hub = await hub_with(hub_factory, base_url)
    await put_aliases(hub, {"fast": ["up/cut", "up/ok"]})
    chunks = await hub.openai().chat.completions.create(
        model="fast",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    )
    with pytest.raises(openai.APIError):
        async for _ in chunks:
            pass
    assert [r.body["model"] for r in fake.requests] == ["cut"]
    await hub.eventually(lambda: [r["status"] for r in hub.calls()] == ["failed"])


async def test_an_unsafe_model_name_never_reaches_a_url(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """#7.12: a model name cannot climb out of the provider's API path, for any format."""
    fake, base_url = upstream
    hub = await hub_with(hub_factory, base_url)
    for name in ("up/../../admin", "up/a?b=1", "up/a#b", "up/a%2F..", "up/a\x00b"):
        with pytest.raises(openai.BadRequestError) as refused:
            await hub.openai().chat.completions.create(model=name, messages=MESSAGES)  # type: ignore[arg-type]
        assert refused.value.body["param"] == "model"  # type: ignore[index]
    assert fake.requests == [] and hub.calls() == []


async def test_an_alias_set_on_a_running_server_applies_within_two_seconds(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    """Written by another process (the CLI) straight to the database: the running server's
    follower picks the catalogue change up."""
    hub = await hub_with(hub_factory, upstream[1])
    client = hub.openai()
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="swap", messages=MESSAGES)  # type: ignore[arg-type]
    proc = await asyncio.create_subprocess_exec(
        *hub.cli("aliases", "set", "swap", "demo/echo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    loop = asyncio.get_running_loop()
    set_at = loop.time()
    for _ in range(100):
        try:
            reply = await client.chat.completions.create(model="swap", messages=MESSAGES)  # type: ignore[arg-type]
            break
        except openai.NotFoundError:
            await asyncio.sleep(0.05)
    assert loop.time() - set_at < 2.0
    assert reply.choices[0].message.content == "You said: hi"
