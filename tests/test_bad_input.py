"""Bad requests get a clear error in OpenAI's shape, with the right status, and record nothing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from tests.conftest import Hub, HubFactory


async def send(
    hub: Hub, method: str, path: str, data: bytes | None = None, key: bool = True
) -> tuple[int, dict[str, Any], CIMultiDict[str]]:
    headers = {"Authorization": f"Bearer {hub.key}"} if key else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, hub.url + path, data=data, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None), r.headers.copy()


def shaped(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "demo/echo"}', "messages"),
        (b'{"model": "demo/echo", "messages": []}', "messages"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "demo/echo", "messages": [{"role":"user","content":"x"}], "stream": "yes"}',
         "stream"),
    ],
)  # fmt: skip
async def test_malformed_chat_requests_are_400(hub: Hub, data: bytes, param: str | None) -> None:
    status, body, _ = await send(hub, "POST", "/v1/chat/completions", data)
    assert status == 400
    assert shaped(body)["param"] == param
    assert hub.calls() == []


async def test_embeddings_without_input_is_400(hub: Hub) -> None:
    status, body, _ = await send(hub, "POST", "/v1/embeddings", b'{"model": "demo/echo"}')
    assert status == 400 and shaped(body)["param"] == "input"


async def test_body_over_limit_is_413(hub_factory: HubFactory) -> None:
    hub = await hub_factory(server={"max_body_mb": 0.01})
    big = b'{"model": "demo/echo", "messages": [{"role": "user", "content": "' + b"x" * 20_000
    status, body, _ = await send(hub, "POST", "/v1/chat/completions", big + b'"}]}')
    assert status == 413 and shaped(body)["code"] == "request_too_large"
    assert hub.calls() == []


async def test_unknown_route_404_and_wrong_method_405(hub: Hub) -> None:
    status, body, _ = await send(hub, "GET", "/v1/nothing-here")
    assert status == 404 and shaped(body)["code"] == "unknown_route"
    status, body, headers = await send(hub, "GET", "/v1/chat/completions")
    assert status == 405 and shaped(body)["code"] == "method_not_allowed"
    assert headers["Allow"] == "POST"


async def test_every_answer_has_a_request_id(hub: Hub) -> None:
    _, _, headers = await send(hub, "GET", "/v1/nothing-here")
    assert len(headers["X-Request-Id"]) == 24
