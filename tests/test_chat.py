"""Chat completions through the real openai SDK: demo and OpenAI-compatible upstreams."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import Hub
from tests.fakes.openai_upstream import USAGE, WORDS, FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi there"}]
BACKENDS = ("sqlite", "postgres")  # every hub test here runs on both (tests/conftest.py)


async def test_demo_provider_answers_streamed_and_not(hub: Hub) -> None:
    client = hub.openai()
    reply = await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    assert reply.choices[0].message.content == "You said: hi there"
    assert reply.usage is not None and reply.usage.completion_tokens == 4

    stream = await client.chat.completions.create(model="demo/echo", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "You said: hi there"


async def test_upstream_non_streamed_is_recorded(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    reply = await hub.openai().chat.completions.create(model="up/ok", messages=MESSAGES)
    assert reply.choices[0].message.content == "".join(WORDS)
    await hub.settle()  # PostgreSQL's writer commits on its own task
    [row] = hub.calls()
    assert (row["status"], row["provider"], row["model"], row["type"]) == (
        "success", "up", "ok", "chat",
    )  # fmt: skip
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (11, 4, 15)
    assert row["usage_estimated"] == 0 and row["stream"] == 0
    assert row["upstream_status"] == 200 and row["duration_ms"] is not None
    assert row["finished_at"] >= row["created_at"]
    assert len(row["trace_id"]) == 32


async def test_upstream_streamed_usage_counted_from_stream(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    stream = await hub.openai().chat.completions.create(
        model="up/ok", messages=MESSAGES, stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(WORDS)
    assert all(c.usage is None for c in chunks), "the injected usage chunk reached the client"
    sent = fake.requests[-1]
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == "ok"
    await hub.settle()  # PostgreSQL's writer commits on its own task
    [row] = hub.calls()
    assert row["status"] == "success" and row["stream"] == 1
    assert row["prompt_tokens"] == USAGE["prompt_tokens"]
    assert row["completion_tokens"] == USAGE["completion_tokens"]
    assert row["usage_estimated"] == 0 and row["ttfb_ms"] is not None


async def test_client_asked_usage_keeps_usage_chunk(hub: Hub) -> None:
    stream = await hub.openai().chat.completions.create(
        model="up/ok", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15


async def test_no_usage_from_upstream_is_estimated_and_marked(hub: Hub) -> None:
    await hub.openai().chat.completions.create(model="up/nousage", messages=MESSAGES)
    await hub.settle()  # PostgreSQL's writer commits on its own task
    [row] = hub.calls()
    assert row["status"] == "success" and row["usage_estimated"] == 1
    assert row["prompt_tokens"] > 0


async def test_embeddings(hub: Hub, upstream: tuple[FakeOpenAI, str]) -> None:
    client = hub.openai()
    out = await client.embeddings.create(model="up/text-embed", input=["a", "b"])
    assert [d.index for d in out.data] == [0, 1]
    demo = await client.embeddings.create(model="demo/echo", input="hello")
    assert len(demo.data[0].embedding) == 8
    await hub.settle()
    rows = hub.calls()
    assert [r["type"] for r in rows] == ["embedding", "embedding"]
    assert rows[0]["prompt_tokens"] == 4


async def test_models_lists_allow_lists(hub: Hub) -> None:
    models = await hub.openai().models.list()
    assert [m.id for m in models.data] == ["demo/echo"]


async def test_unknown_provider_and_model_outside_allow_list_are_404(hub: Hub) -> None:
    client = hub.openai()
    for model in ("nope/gpt", "demo/not-echo", "no-slash"):
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model=model, messages=MESSAGES)
        assert info.value.code == "model_not_found"
    assert hub.calls() == []
