"""Provider keys never come back: an upstream error that quotes its credential is scrubbed by
value (whatever the key's shape) before it reaches the client, the call's row or a log line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp import web

from hubproxy.config import Secret
from hubproxy.errors import from_upstream, scrub
from hubproxy.telemetry import redact
from tests.conftest import Hub, HubFactory
from tests.fakes.wire import serve
from tests.test_process import Server

CUSTOM_KEY = "my-custom-key-1234567890"  # no known prefix: only its value can find it
AZURE_KEY = "0f3c9a7be21d4c5a8e6b0d9f1a2c3e4b"  # Azure's shape: 32 hex digits


def quoting_upstream() -> web.Application:
    """An upstream that refuses every request with a 400 that quotes the key it was sent, as
    some servers do ("Incorrect API key provided: ...")."""

    async def refuse(request: web.Request) -> web.Response:
        sent = request.headers.get("api-key") or request.headers.get("Authorization", "")
        sent = sent.removeprefix("Bearer ")
        message = f'Invalid request for key {sent}; also quoted as {{"key": "{sent}"}}'
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error", "code": "bad"}},
            status=400,
        )

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", refuse)
    return app


@pytest.fixture
async def quoting() -> AsyncIterator[str]:
    async with serve(quoting_upstream()) as url:
        yield url


@pytest.fixture
async def hub(hub_factory: HubFactory, quoting: str) -> Hub:
    return await hub_factory(
        [
            {"name": "custom", "type": "openai", "base_url": quoting + "/v1",
             "api_key": CUSTOM_KEY},
            {"name": "az", "type": "azure", "base_url": quoting, "api_key": AZURE_KEY},
        ]
    )  # fmt: skip


@pytest.mark.parametrize(("model", "key"), [("custom/m", CUSTOM_KEY), ("az/dep", AZURE_KEY)])
async def test_upstream_error_quoting_the_key_is_scrubbed(hub: Hub, model: str, key: str) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as info:
        await hub.openai().chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    raw = info.value.response.text
    assert "Invalid request for key [redacted]" in raw, raw  # the words are kept, the key not
    assert key not in raw
    [row] = hub.calls()
    assert row["status"] == "failed" and row["error"] is not None
    assert key not in row["error"] and "[redacted]" in row["error"]
    # The Anthropic face too.
    async with aiohttp.ClientSession() as s, s.post(
        hub.url + "/v1/messages",
        json={"model": model, "max_tokens": 5, "messages": messages},
        headers={"x-api-key": hub.key},
    ) as r:  # fmt: skip
        text = await r.text()
        assert r.status == 400 and key not in text and "[redacted]" in text
    assert all(key not in (row["error"] or "") for row in hub.calls())


def test_every_registered_value_is_scrubbed_in_any_form() -> None:
    key = "Zq9/custom+key=0042"
    assert scrub(f"x {key} y") == f"x {key} y"  # not registered: no known shape either
    Secret(key)  # what config loading does for every provider key
    assert key in redact.REGISTRY
    for text in (key, '{"k": "Zq9\\/custom+key=0042"}', "k=Zq9%2Fcustom%2Bkey%3D0042"):
        assert "custom" not in scrub(text), text
    err = from_upstream(400, f"bad key {key}")
    assert key not in err.message and "[redacted]" in err.message
    # Key-shaped strings are blanked whether registered or not; short values are ignored.
    assert scrub("sk-abcdefghijklmnop and hp-ABCDEFGHIJKLMNOP") == "[redacted] and [redacted]"
    redact.register("short")
    assert scrub("a short word") == "a short word"


async def test_a_quoted_key_never_reaches_the_log_of_a_server(tmp_path: Path, quoting: str) -> None:
    providers = [{"name": "custom", "type": "openai", "base_url": quoting + "/v1",
                  "api_key": CUSTOM_KEY}]  # fmt: skip
    server = Server(tmp_path, providers=providers)
    try:
        await server.start()
        body = {"model": "custom/m", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as s, s.post(
            server.url + "/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {server.key}"},
        ) as r:  # fmt: skip
            assert r.status == 400
            assert CUSTOM_KEY not in await r.text()
    finally:
        server.stop()
    text = server.log.read_text()
    [access] = [x for x in server.lines() if x.get("path") == "/v1/chat/completions"]
    assert "[redacted]" in access["error"]
    assert CUSTOM_KEY not in text and server.key not in text
