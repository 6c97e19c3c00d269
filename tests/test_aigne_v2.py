"""AIGNE Hub's v2 faces over real HTTP: /api/v2/chat (whole and streamed), the flat chat
completions, embeddings, images, status, models, balance and discovery; errors in AIGNE's
shape with a 4xx on every route."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from hubproxy.api.state import CREDITS
from hubproxy.providers.sse import Decoder
from tests.conftest import Hub, HubFactory
from tests.test_media_e2e import give

RATES = [
    {"model": "demo/echo", "input": "3", "output": "7"},  # micro-credits per token: 3 and 7
    {"model": "demo/echo", "type": "embedding", "input": "2", "output": "0"},
    {"model": "demo/painter", "type": "image", "per_image": "0.0125"},
]
LINK = "https://pay.example/buy"
CLIENT = "zNKtestClientDid"


async def v2_hub(hub_factory: HubFactory, balance: int = 1_000_000) -> Hub:
    hub = await hub_factory(
        [{"name": "demo", "type": "fake", "models": ["echo", "painter"]}],
        billing={"mode": "credits", "rates": RATES},
        aigne={"payment_link": LINK, "default_model": "demo/echo"},
    )
    if balance:
        give(hub, balance)
        await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == balance)
    return hub


async def call(
    hub: Hub, method: str, path: str, *, key: str | None = "", **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    headers = {CLIENT_HEADER: CLIENT, **kw.pop("headers", {})}
    if key is not None:
        headers["Authorization"] = f"Bearer {key or hub.key}"
    async with aiohttp.ClientSession() as s, s.request(
        method, hub.url + path, headers=headers, **kw
    ) as r:  # fmt: skip
        return r.status, dict(r.headers), await r.read()


CLIENT_HEADER = "x-aigne-hub-client-did"


def debit_of(hub: Hub) -> int:
    [row] = hub.rows("SELECT amount FROM credit_ledger WHERE kind = 'debit'")
    return int(-row["amount"])


def credits(value: Any) -> int:
    """AIGNE's decimal credits as micro-credits, exactly."""
    assert isinstance(value, int | float) and not isinstance(value, bool)
    return int(Decimal(repr(value)) * 1_000_000)


async def test_v2_chat_whole_reports_its_debit(hub_factory: HubFactory) -> None:
    hub = await v2_hub(hub_factory)
    body = {"input": {"messages": [{"role": "system", "content": "be brief"},
                                   {"role": "user", "content": "hi there"}],
                      "modelOptions": {"model": "demo/echo", "temperature": 0.2}},
            "agent": "$CHAT_MODEL", "options": {}}  # fmt: skip
    status, _, raw = await call(hub, "POST", "/api/v2/chat", json=body)
    assert status == 200, raw
    out = orjson.loads(raw)
    assert out["text"] == "You said: hi there" and out["model"] == "demo/echo"
    usage = out["usage"]
    [row] = hub.calls()
    assert (usage["inputTokens"], usage["outputTokens"]) == (
        row["prompt_tokens"], row["completion_tokens"])  # fmt: skip
    assert row["credits"] == 3 * row["prompt_tokens"] + 7 * row["completion_tokens"]
    assert credits(usage["aigneHubCredits"]) == row["credits"] == debit_of(hub)
    assert usage["creditPrefix"] == "$" and usage["modelCallId"] == row["id"]
    assert (row["app_id"], row["type"], row["billing"]) == (CLIENT, "chat", "credits")


async def test_v2_chat_stream_closes_without_done_and_reports_its_debit(
    hub_factory: HubFactory,
) -> None:
    hub = await v2_hub(hub_factory)
    body = {"input": {"messages": [{"role": "user", "content": "stream me"}],
                      "modelOptions": {"model": "demo/echo"}},
            "options": {"streaming": True}}  # fmt: skip
    status, headers, raw = await call(hub, "POST", "/api/v2/chat", json=body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert b"[DONE]" not in raw and b"event:" not in raw
    events = [orjson.loads(e.data) for e in Decoder().feed(raw) if e.data]
    assert events[0] == {"delta": {"json": {"model": "demo/echo"}}}
    text = "".join(e["delta"]["text"]["text"] for e in events if "text" in e["delta"])
    assert text == "You said: stream me"
    usage = events[-1]["delta"]["json"]["usage"]
    [row] = hub.calls()
    assert credits(usage["aigneHubCredits"]) == row["credits"] == debit_of(hub) > 0
    assert usage["outputTokens"] == row["completion_tokens"] and row["app_id"] == CLIENT


async def test_v2_chat_completions_flat_whole_and_streamed(hub_factory: HubFactory) -> None:
    hub = await v2_hub(hub_factory)
    body = {"model": "demo/echo", "messages": [{"role": "user", "content": "flat"}]}
    status, _, raw = await call(hub, "POST", "/api/v2/chat/completions", json=body)
    assert status == 200 and orjson.loads(raw) == {
        "role": "assistant", "text": "You said: flat", "content": "You said: flat"}  # fmt: skip
    status, _, raw = await call(hub, "POST", "/api/v2/chat/completions", json=body,
                                headers={"Accept": "text/event-stream"})  # fmt: skip
    events = [orjson.loads(e.data) for e in Decoder().feed(raw) if e.data]
    assert "".join(e["delta"]["content"] for e in events if "delta" in e) == "You said: flat"
    assert set(events[-1]["usage"]) == {"promptTokens", "completionTokens", "totalTokens"}
    assert b"[DONE]" not in raw


async def test_v2_embeddings_and_images(hub_factory: HubFactory) -> None:
    hub = await v2_hub(hub_factory)
    embed = {"model": "demo/echo", "input": {"input": ["a", "b"]}}
    status, _, raw = await call(hub, "POST", "/api/v2/embeddings", json=embed)
    assert status == 200 and len(orjson.loads(raw)["data"]) == 2
    body = {"model": "demo/painter", "prompt": "a lake", "n": 2, "responseFormat": "b64_json"}
    status, _, raw = await call(hub, "POST", "/api/v2/image/generations", json=body)
    out = orjson.loads(raw)
    assert status == 200 and len(out["images"]) == 2 and out["data"] == out["images"]
    first = out["images"][0]
    assert first["base64"] == first["b64_json"] == first["b64Json"] and first["url"] is None
    assert credits(out["usage"]["aigneHubCredits"]) == 25_000  # 2 images at 0.0125
    body = {"input": {"prompt": "a lake", "n": 1, "outputFileType": "url",
                      "modelOptions": {"model": "demo/painter"}},
            "options": {"streaming": False}}  # fmt: skip
    status, _, raw = await call(hub, "POST", "/api/v2/image", json=body)
    out = orjson.loads(raw)
    assert status == 200 and out["images"][0]["type"] == "url"
    assert out["images"][0]["url"].startswith("data:image/png;base64,")
    assert credits(out["usage"]["aigneHubCredits"]) == 12_500
    rows = hub.calls()
    assert [r["type"] for r in rows] == ["embedding", "image", "image"]
    assert [r["credits"] for r in rows[1:]] == [25_000, 12_500]


async def test_v2_status_models_balance_and_discovery(hub_factory: HubFactory) -> None:
    hub = await v2_hub(hub_factory)
    status, _, raw = await call(hub, "GET", "/api/v2/status?model=demo/echo")
    assert (status, orjson.loads(raw)) == (200, {"available": True})
    for path in ("/api/ai-providers/models", "/api/ai/models?type=image"):
        status, _, raw = await call(hub, "GET", path, key=None)  # public
        assert status == 200
    models = orjson.loads(raw)
    assert models == [{
        "key": "demo/painter", "model": "painter", "type": "image", "provider": "demo",
        "providerId": "demo", "input_credits_per_token": "0",
        "output_credits_per_token": "0.0125",
        "modelMetadata": {"features": [], "imageGeneration": {"variants": []}},
        "status": {"available": True}, "providerDisplayName": "demo"}]  # fmt: skip
    _, _, raw = await call(hub, "GET", "/api/ai/models?type=chat", key=None)
    [chat] = orjson.loads(raw)
    assert (chat["input_credits_per_token"], chat["output_credits_per_token"]) == (
        "0.000003", "0.000007")  # fmt: skip
    status, _, raw = await call(hub, "GET", "/api/user/credit/balance")
    assert orjson.loads(raw) == {"balance": "1", "currency": "credits", "total": "1",
                                 "grantCount": 1, "pendingCredit": "0"}  # fmt: skip
    status, _, raw = await call(hub, "GET", "/__blocklet__.js?type=json", key=None)
    mounts = orjson.loads(raw)["componentMountPoints"]
    assert {"did": "z8ia3xzq2tMq8CRHfaXj1BTYJyYnEcHbqP8cJ", "mountPoint": "/"}.items() <= mounts[
        0
    ].items()


async def test_v2_status_says_not_enough_when_credits_are_short(hub_factory: HubFactory) -> None:
    hub = await v2_hub(hub_factory, balance=0)
    status, _, raw = await call(hub, "GET", "/api/v2/status")
    assert (status, orjson.loads(raw)) == (200, {
        "available": False, "error": "Insufficient credits.", "code": 402, "link": LINK,
        "type": "NOT_ENOUGH"})  # fmt: skip
    body = {"input": {"messages": [{"role": "user", "content": "hi"}]}}
    status, _, raw = await call(hub, "POST", "/api/v2/chat", json=body)
    error = orjson.loads(raw)["error"]
    assert status == 402 and error["type"] == "NOT_ENOUGH" and error["link"] == LINK


BAD: list[tuple[str, str, Any, int]] = [
    ("POST", "/api/v2/chat", b"{not json", 400),
    ("POST", "/api/v2/chat", {"input": "hi"}, 400),
    ("POST", "/api/v2/chat", {"input": {"messages": [{"role": "bot", "content": "x"}]}}, 400),
    ("POST", "/api/v2/chat", {"input": {"messages": [{"role": "user", "content": "x"}],
                                        "modelOptions": {"model": "nope/x"}}}, 404),
    ("POST", "/api/v2/chat", {"input": {"messages": [{"role": "user", "content": "x"}],
                                        "modelOptions": {"temperature": "hot"}}}, 400),
    ("POST", "/api/v2/chat/completions", {"model": "demo/echo", "messages": []}, 400),
    ("POST", "/api/v2/embeddings", {"model": "demo/echo", "input": {"input": []}}, 400),
    ("POST", "/api/v2/image/generations", {"model": "demo/painter", "prompt": "x",
                                           "size": "7x7"}, 400),
    ("POST", "/api/v2/image", {"input": {"prompt": "x", "modelOptions": {
        "model": "demo/painter", "quality": "ultra"}}}, 400),
    ("POST", "/api/v2/image", {"input": {"prompt": ""}}, 400),
    ("GET", "/api/v2/status?model=nope/x", None, 404),
    ("GET", "/api/v2/chat", None, 405),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "expected"), BAD)
async def test_v2_bad_input_is_4xx_in_aignes_shape(
    hub_factory: HubFactory, method: str, path: str, body: Any, expected: int
) -> None:
    hub = await v2_hub(hub_factory)
    kw = {"data": body} if isinstance(body, bytes) else {} if body is None else {"json": body}
    status, _, raw = await call(hub, method, path, **kw)
    assert status == expected, raw
    error = orjson.loads(raw)["error"]
    assert {"message", "type", "timestamp"} <= set(error) and error["message"]
    assert "param" not in error  # AIGNE's shape, not OpenAI's
    if expected != 405:  # the method is wrong whoever calls
        status, _, raw = await call(hub, method, path, key="hp-wrong", **kw)
        assert status == 401 and "timestamp" in orjson.loads(raw)["error"]
    assert hub.calls() == []
