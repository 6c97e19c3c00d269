"""Every stream translator's usage: None until the provider's final count, never a running one.

Each captured stream is replayed event by event; before its final usage the translator must
report no usage (so that a cut there is estimated), and from it on the provider's figures.
`prompt_tokens` reports the input count as soon as the stream gives it.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from hubproxy.billing.tokens import units
from hubproxy.providers.anthropic.inbound_stream import MessagesStreamFromOpenAI
from hubproxy.providers.anthropic.stream import AnthropicPassthroughStream, AnthropicStream
from hubproxy.providers.base import StreamTranslator, Usage
from hubproxy.providers.gemini.provider import GeminiStream
from hubproxy.providers.openai.provider import OpenAIStream
from hubproxy.providers.sse import Decoder, Event
from tests.fakes.openai_upstream import USAGE, chunks, running_usage
from tests.fakes.wire import data


def events(raw: bytes) -> list[Event]:
    decoder = Decoder()
    return decoder.feed(raw) + decoder.close()


def kind(event: Event) -> str:
    if event.data is None or event.data == b"[DONE]":
        return ""
    obj = orjson.loads(event.data)
    return str(obj.get("type", "")) if isinstance(obj, dict) else ""


ANTHROPIC: list[Callable[[], StreamTranslator]] = [
    lambda: AnthropicStream(include_usage=True),
    AnthropicPassthroughStream,
]


@pytest.mark.parametrize("make", ANTHROPIC)
@pytest.mark.parametrize(
    ("name", "prompt", "final"),
    [
        ("stream_text.sse", 25, Usage(25, 15)),
        # Cache reads and writes: message_start's counts, then message_delta's cumulative ones.
        ("stream_unicode_cache.sse", 2679 + 1200 + 4100, Usage(7979, 9, 4100, 1200)),
    ],
)
def test_anthropic_usage_is_final_only_from_message_delta(
    make: Callable[[], StreamTranslator], name: str, prompt: int, final: Usage
) -> None:
    translator = make()
    seen_delta = False
    for event in events(data(f"anthropic/{name}")):
        before = kind(event)
        translator.feed(event)
        if before == "message_start":
            assert translator.usage is None, "message_start's output_tokens: 1 taken as final"
            assert translator.prompt_tokens == prompt
        seen_delta = seen_delta or before == "message_delta"
        if not seen_delta:
            assert translator.usage is None
    assert translator.finished and translator.usage == final


@pytest.mark.parametrize("make", ANTHROPIC)
def test_anthropic_stream_without_usage_in_message_delta_is_estimated(
    make: Callable[[], StreamTranslator],
) -> None:
    raw = data("anthropic/stream_text.sse").replace(b', "usage": {"output_tokens": 15}', b"")
    translator = make()
    for event in events(raw):
        translator.feed(event)
    assert translator.finished
    assert translator.usage is None  # message_start's placeholder output is no final count
    assert translator.prompt_tokens == 25
    assert translator.text_chars == units("Hello!")


def test_gemini_usage_is_final_only_on_the_finishing_event() -> None:
    translator = GeminiStream(include_usage=True)
    first, last = events(data("gemini/stream_text_ja.sse"))
    translator.feed(first)
    assert translator.usage is None, "a running usageMetadata was taken as final"
    assert translator.prompt_tokens == 138
    assert translator.text_chars == units("今日の東京の天気") == 32
    out = translator.feed(last)
    assert translator.finished
    assert translator.usage == Usage(138, 15)
    assert b'"completion_tokens":15' in out  # the usage chunk the client asked for


def test_openai_running_usage_is_final_only_at_done() -> None:
    body = {"model": "m"}
    raw = [running_usage(c, i) for i, c in enumerate(chunks(body, with_usage=False))]
    translator = OpenAIStream(strip_usage=True)
    for chunk in raw:
        for event in events(chunk):
            translator.feed(event)
        assert translator.usage is None, "a running usage was taken as final"
        assert translator.prompt_tokens == USAGE["prompt_tokens"]
    [done] = events(b"data: [DONE]\n\n")
    translator.feed(done)
    assert translator.finished
    assert translator.usage == Usage(USAGE["prompt_tokens"], len(raw) - 1)


def test_openai_usage_chunk_is_final_before_done() -> None:
    translator = OpenAIStream(strip_usage=False)
    for chunk in chunks({"model": "m"}, with_usage=True):
        for event in events(chunk):
            translator.feed(event)
    assert not translator.finished
    assert translator.usage == Usage(USAGE["prompt_tokens"], USAGE["completion_tokens"])


def test_openai_text_is_measured_in_estimate_units() -> None:
    """Raw UTF-8 or escaped, a CJK character in a chunk is at least a token's worth."""
    text = "東京の天気"
    for ensure_ascii in (False, True):
        translator = OpenAIStream(strip_usage=True)
        for _ in range(3):  # the first chunk teaches the skeleton; the others take the fast path
            obj = {"id": "c", "choices": [{"index": 0, "delta": {"content": text}}]}
            payload = orjson.dumps(obj)
            if ensure_ascii:
                payload = payload.decode().encode("ascii", "backslashreplace")
            for event in events(b"data: " + payload + b"\n\n"):
                translator.feed(event)
        assert translator.text_chars >= 3 * units(text) == 3 * len(text) * 4, ensure_ascii


def test_inbound_stream_follows_the_inner_translator() -> None:
    inner = GeminiStream(include_usage=True)
    wrapper = MessagesStreamFromOpenAI(inner, model="m")
    first, last = events(data("gemini/stream_text_ja.sse"))
    out = wrapper.feed(first)
    assert wrapper.usage is None and wrapper.prompt_tokens == 138
    start = orjson.loads(out.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    assert start["message"]["usage"] == {"input_tokens": 138, "output_tokens": 0}
    wrapper.feed(last)
    assert wrapper.finished and wrapper.usage == Usage(138, 15)
    assert wrapper.text_chars == inner.text_chars
