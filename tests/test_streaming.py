"""Streaming through hubproxy: chunk by chunk, exact bytes, disconnects, and upstream faults."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from multidict import CIMultiDict

from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "stream": True, **extra}


async def post(hub: Hub, payload: dict[str, Any]) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            hub.url + "/v1/chat/completions",
            json=payload,
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r,
    ):
        return r.status, r.headers.copy(), await r.read()


def events(raw: bytes) -> list[bytes]:
    return [e.removeprefix(b"data: ") for e in raw.split(b"\n\n") if e]


async def test_client_gets_first_chunk_before_upstream_finishes(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            hub.url + "/v1/chat/completions",
            json=body("up/gated"),
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r,
    ):
        first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        second = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        assert b'"role":"assistant"' in first and b'"Hello"' in second
        assert not fake.release.is_set(), "the upstream was still holding the rest back"
        fake.release.set()
        rest = await asyncio.wait_for(r.read(), 5)
    assert rest.endswith(b"data: [DONE]\n\n")


async def test_a_streams_head_goes_out_with_its_first_bytes(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    """One write, not two: the client's first read holds the head and the first event,
    even when the upstream's first event comes well after its head."""
    fake, _ = upstream
    payload = orjson.dumps(body("up/late"))
    host, port = hub.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: hub\r\n"
            + f"Authorization: Bearer {hub.key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await asyncio.wait_for(fake.first_sent.wait(), 5)  # the upstream answered its head
        early = asyncio.ensure_future(reader.read(65536))
        done, _ = await asyncio.wait([early], timeout=0.3)
        assert not done, "the head went out alone, before any event"
        fake.release.set()
        first = await asyncio.wait_for(early, 5)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"text/event-stream" in first and b'data: {"id"' in first
    finally:
        writer.close()


async def test_stream_headers_and_what_never_crosses(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    status, headers, raw = await post(hub, body("up/ok"))
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert headers["x-upstream-request-id"] == "req_upstream_1"
    assert "x-hop" not in headers and "Set-Cookie" not in headers
    assert headers.get("Connection", "").lower() != "keep-alive, x-hop"
    assert b"sk-upstream-SECRET" not in raw
    sent = fake.requests[-1].headers
    assert sent["Authorization"] == "Bearer sk-upstream-SECRET-key-000000001"
    assert hub.key not in str(sent), "the client's key went upstream"
    assert "x-api-key" not in {k.lower() for k in sent}


async def test_bytes_equal_what_the_upstream_sends_without_injected_usage(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    _, base_url = upstream
    _, _, through_hub = await post(hub, body("up/ok"))
    async with (
        aiohttp.ClientSession() as s,
        s.post(base_url + "/chat/completions", json=body("ok")) as r,
    ):
        direct = await r.read()
    assert b'"usage"' not in direct
    assert through_hub == direct


async def test_client_disconnect_cancels_upstream_and_is_recorded(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    async with aiohttp.ClientSession() as s:
        r = await s.post(
            hub.url + "/v1/chat/completions",
            json=body("up/gated"),
            headers={"Authorization": f"Bearer {hub.key}"},
        )
        await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
        await asyncio.wait_for(fake.first_sent.wait(), 5)
        r.close()  # drop the connection mid-stream
    await asyncio.wait_for(fake.disconnected.wait(), 5)
    assert not fake.release.is_set()
    await hub.eventually(lambda: [r["status"] for r in hub.calls()] == ["failed"])
    [row] = hub.calls()
    assert row["error"] == "client disconnected"
    assert row["usage_estimated"] == 1 and row["prompt_tokens"] > 0


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("up/stall", "upstream_timeout"),
        ("up/cut", "upstream_disconnected"),
        ("up/malformed", "bad_upstream_response"),
    ],
)
async def test_fault_after_first_byte_is_an_sse_error_event(
    hub: Hub, model: str, code: str
) -> None:
    status, _, raw = await post(hub, body(model))
    assert status == 200
    last = orjson.loads(events(raw)[-1])
    assert last["error"]["code"] == code
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert b"[DONE]" not in raw
    [row] = hub.calls()
    assert row["status"] == "failed" and row["error"] == last["error"]["message"]


async def test_sdk_raises_on_error_event(hub: Hub) -> None:
    stream = await hub.openai().chat.completions.create(
        model="up/cut", messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("up/e400", 400, "code_400"),
        ("up/e429", 429, "rate_limit_exceeded"),
        ("up/e500", 502, "upstream_error"),
        ("up/e401", 502, "upstream_auth_failed"),
        ("up/hang", 504, "upstream_timeout"),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
async def test_upstream_errors_before_first_byte(
    hub: Hub, model: str, status: int, code: str, stream: bool
) -> None:
    got, headers, raw = await post(hub, {**body(model), "stream": stream})
    assert got == status
    err = orjson.loads(raw)["error"]
    assert err["code"] == code and set(err) == {"message", "type", "param", "code"}
    assert b"sk-upstream-SECRET" not in raw
    if status == 400:  # a client error keeps the upstream's words, scrubbed
        assert err["message"] == "upstream says 400 (key [redacted])"
    if status == 429:
        assert headers["Retry-After"] == "7"
    [row] = hub.calls()
    assert row["status"] == "failed"
    if model == "up/hang":  # sent, never refused: the upstream worked on the prompt (#7.4)
        assert row["usage_estimated"] == 1 and row["completion_tokens"] == 0
        assert row["prompt_tokens"] > 0
    else:
        assert row["usage_estimated"] == 0
        assert row["prompt_tokens"] == 0, "a call the upstream refused consumed nothing"


async def test_auth_failure_message_never_leaks_upstream_words(hub: Hub) -> None:
    _, _, raw = await post(hub, body("up/e401"))
    assert b"SECRET" not in raw and b"sk-" not in raw


async def test_unreachable_upstream_is_502(hub_factory: HubFactory) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hub = await hub_factory(
        [{"name": "gone", "type": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
          "api_key": "sk-x"}]
    )  # fmt: skip
    with pytest.raises(openai.APIStatusError) as info:
        await hub.openai().chat.completions.create(model="gone/x", messages=MESSAGES)
    assert info.value.status_code == 502
    assert info.value.code == "upstream_unreachable"


async def test_a_call_in_flight_is_processing_in_the_log(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, _ = upstream
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            hub.url + "/v1/chat/completions",
            json=body("up/gated"),
            headers={"Authorization": f"Bearer {hub.key}"},
        ) as r,
    ):
        await asyncio.wait_for(fake.first_sent.wait(), 5)
        await hub.eventually(lambda: [c["status"] for c in hub.calls()] == ["processing"])
        fake.release.set()
        await asyncio.wait_for(r.read(), 5)
    [row] = hub.calls()
    assert row["status"] == "success" and row["request_id"] and row["trace_id"]
