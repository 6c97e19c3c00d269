"""Images and audio through the real OpenAI SDK: billed per image, per character, per second
or per MB, exact to the micro-credit; rows typed image/audio; bad input a 4xx in OpenAI's shape."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from hubproxy.api.state import CREDITS
from hubproxy.store import ledger
from hubproxy.store.ops import apply
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_media_upstream import AUDIO, PNG, FakeMedia
from tests.fakes.wire import serve

RATES = [
    {"model": "up/dall-e-3", "type": "image", "per_image": "0.04",
     "per_image_variants": {"1024x1792/hd": "0.12"}},
    {"model": "up/tts-1", "type": "audio", "per_1m_chars": "15"},
    {"model": "up/whisper-1", "type": "audio", "per_second": "0.0001", "per_mb": "0.01"},
    {"model": "demo/painter", "type": "image", "per_image": "0.002"},
    {"model": "up/e400", "type": "image", "per_image": "0.5"},
]  # fmt: skip


@pytest.fixture
async def fake() -> AsyncIterator[FakeMedia]:
    media = FakeMedia()
    async with serve(media.app()) as url:
        media.url = url
        yield media
    media.release.set()


async def media_hub(hub_factory: HubFactory, fake: FakeMedia, **sections: Any) -> Hub:
    hub = await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo", "painter"]},
            {
                "name": "up",
                "type": "openai",
                "base_url": fake.url + "/v1",
                "api_key": "sk-media-000000",
                "idle_timeout_s": 5.0,
            },
        ],
        billing={"mode": "credits", "rates": RATES},
        **sections,
    )
    give(hub, 1_000_000)
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    return hub


def give(hub: Hub, micro: int) -> None:
    conn = hub.db()
    try:
        apply(conn, [ledger.entry(1, "grant", micro, source="", note="test")])
    finally:
        conn.close()


def debits(hub: Hub) -> list[int]:
    return [-r["amount"] for r in hub.rows("SELECT amount FROM credit_ledger WHERE kind='debit'")]


async def test_images_generate_bills_each_image_at_its_variant(
    hub_factory: HubFactory, fake: FakeMedia
) -> None:
    hub = await media_hub(hub_factory, fake)
    result = await hub.openai().images.generate(
        model="up/dall-e-3", prompt="a cat", n=2, size="1024x1792", quality="hd",
        response_format="b64_json",
    )  # fmt: skip
    assert [d.b64_json for d in result.data or []] == [PNG, PNG]
    assert fake.images[0]["model"] == "dall-e-3"  # the upstream's own name
    [row] = hub.calls()
    assert (row["type"], row["status"], row["credits"]) == ("image", "success", 240_000)
    assert orjson.loads(row["params"]) == {"n": 2, "size": "1024x1792", "quality": "hd"}
    assert debits(hub) == [240_000]
    plain = await hub.openai().images.generate(model="up/dall-e-3", prompt="a dog")
    assert plain.data and plain.data[0].url == "https://images.example/1.png"
    assert debits(hub) == [240_000, 40_000]  # no variant for 1024x1024/standard: per_image
    assert hub.app[CREDITS].held == {}


async def test_the_demo_draws_a_real_png(hub_factory: HubFactory, fake: FakeMedia) -> None:
    hub = await media_hub(hub_factory, fake)
    result = await hub.openai().images.generate(
        model="demo/painter", prompt="a sunset", response_format="b64_json", n=3
    )
    assert result.data and len(result.data) == 3
    png = base64.b64decode(result.data[0].b64_json or "")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png
    url = await hub.openai().images.generate(model="demo/painter", prompt="a sunset")
    assert url.data and (url.data[0].url or "").startswith("data:image/png;base64,")
    assert debits(hub) == [6000, 2000]


async def test_speech_streams_audio_as_it_arrives_and_bills_characters(
    hub_factory: HubFactory, fake: FakeMedia
) -> None:
    hub = await media_hub(hub_factory, fake)
    text = "héllo 日本 😀" * 100  # 1000 code points
    async with hub.openai().audio.speech.with_streaming_response.create(
        model="up/tts-1", voice="alloy", input=text
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        received = b""
        async for chunk in response.iter_bytes():
            received += chunk
            if not fake.release.is_set():
                # the first bytes are here while the upstream has not sent the rest yet
                assert received == AUDIO[0]
                fake.release.set()
    assert received == b"".join(AUDIO)
    assert fake.speech[0]["model"] == "tts-1"
    await hub.eventually(lambda: debits(hub) == [15_000])  # 1000 chars at 15 per 1M
    [row] = hub.calls()
    assert (row["type"], row["stream"], row["status"], row["credits"]) == (
        "audio", 1, "success", 15_000)  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("verbose_json", 1235),  # 12.345 s at 100 micro-credits a second: 1234.5, rounded up
        ("json", 1235),  # usage.seconds
        ("text", 2500),  # no duration: 250,000 bytes at 10,000 micro-credits per MB
    ],
)
async def test_transcriptions_bill_per_second_else_per_mb(
    hub_factory: HubFactory, fake: FakeMedia, fmt: str, expected: int
) -> None:
    hub = await media_hub(hub_factory, fake)
    audio = b"RIFF" + bytes(249_996)
    result = await hub.openai().audio.transcriptions.create(
        model="up/whisper-1", file=("talk.wav", audio, "audio/wav"),
        response_format=fmt,  # type: ignore[arg-type]
        language="en",
    )  # fmt: skip
    text = result if isinstance(result, str) else result.text
    assert text.strip() == "hello there"
    [form] = fake.forms
    assert form["model"] == "whisper-1" and form["language"] == "en"
    assert form["file"] == ("talk.wav", "audio/wav", audio)
    [row] = hub.calls()
    assert (row["type"], row["status"], row["credits"]) == ("audio", "success", expected)
    assert debits(hub) == [expected]


async def test_bad_media_requests_are_4xx_in_openais_shape(
    hub_factory: HubFactory, fake: FakeMedia
) -> None:
    hub = await media_hub(hub_factory, fake, server={"max_body_mb": 0.25})
    auth = {"Authorization": f"Bearer {hub.key}"}

    async def post(path: str, **kw: Any) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.post(
            hub.url + path, headers=auth, **kw
        ) as r:  # fmt: skip
            return r.status, await r.json()

    image = {"model": "up/dall-e-3", "prompt": "a cat"}
    cases: list[tuple[str, dict[str, Any], int, str | None]] = [
        ("/v1/images/generations", {"json": {**image, "size": "999x999"}}, 400, "size"),
        ("/v1/images/generations", {"json": {**image, "quality": "ultra"}}, 400, "quality"),
        ("/v1/images/generations", {"json": {**image, "n": 0}}, 400, "n"),
        ("/v1/images/generations", {"data": b"{not json"}, 400, None),
        ("/v1/audio/speech", {"json": {"model": "up/tts-1", "input": "", "voice": "alloy"}},
         400, "input"),
        ("/v1/audio/transcriptions", {"json": {"model": "up/whisper-1"}}, 400, "file"),
    ]  # fmt: skip
    for path, kw, status, param in cases:
        got, body = await post(path, **kw)
        assert got == status, (path, kw, body)
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["param"] == param, body

    def form(data: bytes, kind: str, model: str = "up/whisper-1") -> aiohttp.FormData:
        f = aiohttp.FormData()
        f.add_field("model", model)
        f.add_field("file", data, filename="x.bin", content_type=kind)
        return f

    status, body = await post(
        "/v1/audio/transcriptions", data=form(b"PK\x03\x04", "application/zip")
    )
    assert (status, body["error"]["param"]) == (400, "file")
    status, body = await post("/v1/audio/transcriptions", data=form(bytes(300_000), "audio/wav"))
    assert status == 413 and body["error"]["code"] == "request_too_large"
    status, body = await post("/v1/audio/transcriptions", data=form(b"RIFF", "audio/wav", ""))
    assert (status, body["error"]["param"]) == (400, "model")
    assert hub.calls() == [] and fake.forms == [] and fake.images == []
    # an upstream's refusal comes back in the same shape, and nothing is billed
    with pytest.raises(openai.BadRequestError):
        await hub.openai().images.generate(model="up/e400", prompt="x")
    assert debits(hub) == []
