"""Re-shaping an OpenAI chat stream for a client of another format: the part every such
translator shares (Anthropic's Messages, OpenAI's Responses, AIGNE's v2 events)."""

from __future__ import annotations

from hubproxy.providers.base import JSON, StreamTranslator, Usage
from hubproxy.providers.openai.provider import loads
from hubproxy.providers.sse import Decoder, Event


class Reframed:
    """Wraps a translator that writes OpenAI chat chunks; a subclass writes each chunk in its
    client's shape (`_chunk`) and what closes the stream once the inner one has finished
    (`_close`). usage, prompt_tokens, finished and text_chars follow the inner translator."""

    __slots__ = ("_decoder", "_inner", "finished", "prompt_tokens", "text_chars", "usage")

    def __init__(self, inner: StreamTranslator) -> None:
        self._inner = inner
        self._decoder = Decoder()  # the inner bytes are SSE too: read them as such
        self.usage: Usage | None = None
        self.prompt_tokens: int | None = None
        self.finished = False
        self.text_chars = 0

    def feed(self, event: Event) -> bytes:
        inner = self._inner
        produced = inner.feed(event)
        out: list[bytes] = []
        for chunk in self._decoder.feed(produced) if produced else ():
            if self.finished or chunk.data is None or chunk.data == b"[DONE]":
                continue
            obj = loads(chunk.data, "stream data")
            if isinstance(obj, dict):
                out.append(self._chunk(obj))
        self.usage = inner.usage
        self.prompt_tokens = inner.prompt_tokens
        self.text_chars = inner.text_chars
        if inner.finished and not self.finished:
            out.append(self._close())
            self.finished = True
        return b"".join(out)

    def _chunk(self, obj: JSON) -> bytes:
        raise NotImplementedError

    def _close(self) -> bytes:
        raise NotImplementedError
