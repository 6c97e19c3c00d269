"""Images and audio: request checks, the usage they are billed by (exact to the micro-credit
with media rates), and the demo provider's PNG."""

from __future__ import annotations

import struct
import zlib

import orjson
import pytest

from hubproxy.billing import prices
from hubproxy.errors import BadRequest, HubError, PayloadTooLarge
from hubproxy.gateway import demo_image
from hubproxy.providers.openai import audio, images

NONE = prices.Usage()
VARIANTS = {"1024x1792/hd": "0.12", "1024x1024/hd": "0.08"}
DALLE = prices.Rate.parse("0", "0", per_image="0.04", per_image_variants=VARIANTS)


def test_image_requests_bill_per_image_at_their_variant() -> None:
    req = images.generation_request({"model": "openai/dall-e-3", "prompt": "a cat", "n": 3,
                                     "size": "1024x1792", "quality": "hd",
                                     "response_format": "b64_json"})  # fmt: skip
    assert req.params() == {"n": 3, "size": "1024x1792", "quality": "hd"}
    assert req.response_format == "b64_json"
    assert prices.cost(DALLE, NONE, media=req.usage()) == 360_000
    assert prices.hold(DALLE, 0, 0, media=req.usage()) == 360_000
    plain = images.generation_request({"model": "openai/dall-e-3", "prompt": "a cat"})
    assert (plain.n, plain.size, plain.quality, plain.response_format) == (
        1, "1024x1024", "standard", "url")  # fmt: skip
    assert prices.cost(DALLE, NONE, media=plain.usage()) == 40_000  # no variant: per_image
    assert images.images_of({"data": [{"url": "u"}, {"url": "v"}]}) == 2


@pytest.mark.parametrize(
    "change",
    [{"size": "999x999"}, {"quality": "ultra"}, {"response_format": "png"}, {"n": 0},
     {"n": 11}, {"n": True}, {"prompt": ""}, {"prompt": None}, {"model": ""}, {"size": 1024}],
)  # fmt: skip
def test_bad_image_requests_are_400(change: dict[str, object]) -> None:
    with pytest.raises(BadRequest) as caught:
        images.generation_request({"model": "openai/dall-e-3", "prompt": "a cat", **change})
    assert caught.value.status == 400 and caught.value.param == next(iter(change))


def test_speech_is_billed_per_character() -> None:
    tts = prices.Rate.parse("0", "0", per_1m_chars="15")
    req = audio.speech_request({"model": "openai/tts-1", "input": "héllo 日本 😀" * 100,
                                "voice": "alloy"})  # fmt: skip
    assert req.usage().chars == 1000  # code points, not bytes or UTF-16 units
    assert prices.cost(tts, NONE, media=req.usage()) == 15_000
    odd = prices.Rate.parse("0", "0", per_1m_chars="0.000001")  # a millionth of a micro each
    assert prices.cost(odd, NONE, media=prices.MediaUsage(chars=1)) == 1  # rounded up, once
    for bad in ({"input": ""}, {"voice": None}, {"response_format": "ogg"},
                {"input": "x" * 4097}):  # fmt: skip
        with pytest.raises(BadRequest):
            audio.speech_request({"model": "openai/tts-1", "input": "hi", "voice": "alloy", **bad})


WHISPER = prices.Rate.parse("0", "0", per_second="0.0001", per_mb="0.01")


def test_transcriptions_bill_per_second_else_per_mb() -> None:
    reported = orjson.dumps({"text": "hi", "usage": {"type": "duration", "seconds": 61}})
    usage = audio.transcription_usage(reported, 2_000_000)
    assert usage.milliseconds == 61_000
    assert prices.cost(WHISPER, NONE, media=usage) == 6_100
    verbose = orjson.dumps({"task": "transcribe", "duration": 3.5199999809265137, "text": "hi"})
    usage = audio.transcription_usage(verbose, 2_000_000)
    assert usage.milliseconds == 3_520
    assert prices.cost(WHISPER, NONE, media=usage) == 352
    for text_reply in (b"hello there", orjson.dumps({"text": "hi"})):
        usage = audio.transcription_usage(text_reply, 2_500_001)
        assert usage.milliseconds is None
        assert prices.cost(WHISPER, NONE, media=usage) == 25_001  # 2.500001 MB × 10,000
    per_mb_only = prices.Rate.parse("0", "0", per_mb="0.01")  # a duration, but no such price
    assert prices.cost(per_mb_only, NONE, media=audio.transcription_usage(
        reported, 1_000_000)) == 10_000  # fmt: skip


def test_uploads_must_be_audio_within_the_limit() -> None:
    audio.check_upload("audio/mpeg", 1000, 1000)
    audio.check_upload("video/webm; codecs=opus", 10, 1000)
    for mime in ("image/png", "text/plain", None, "application/octet-stream"):
        with pytest.raises(BadRequest):
            audio.check_upload(mime, 10, 1000)
    with pytest.raises(PayloadTooLarge) as caught:
        audio.check_upload("audio/wav", 1001, 1000)
    assert caught.value.status == 413
    assert audio.check_transcription_fields({"model": "openai/whisper-1"}) == "openai/whisper-1"
    for fields in ({}, {"model": "m/x", "response_format": "docx"}):
        with pytest.raises(HubError):
            audio.check_transcription_fields(fields)


def test_the_demo_png_is_a_real_png() -> None:
    raw = demo_image.png("a cat", 16)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(raw):
        (length,) = struct.unpack(">I", raw[at : at + 4])
        kind, body = raw[at + 4 : at + 8], raw[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", raw[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        chunks.append((kind, body))
        at += 12 + length
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (16, 16, 8, 2, 0, 0, 0)
    pixels = zlib.decompress(chunks[1][1])
    assert len(pixels) == 16 * (1 + 16 * 3) and pixels[:: 1 + 16 * 3] == b"\x00" * 16
    assert demo_image.png("a cat", 16) == raw and demo_image.png("a dog", 16) != raw
    assert demo_image.data_url("a cat", 16).startswith("data:image/png;base64,iVBORw0KGgo")
