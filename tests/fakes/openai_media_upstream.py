"""A fake OpenAI media API on loopback: image generation, speech, transcription.

Shapes follow OpenAI's API reference (images.generate's {created, data: [{b64_json | url}]};
speech's raw audio bytes; a transcription's {text}, verbose_json's {text, duration, ...} and
json's newer {text, usage: {type: "duration", seconds}}).
- Images: `n` items, b64_json or url as asked; the model "e400" answers OpenAI's 400.
- Speech: the audio in three chunks; after the first it waits for `release`, so a test can
  see the first bytes arrive before the rest exist.
- Transcription: keeps the form it got; `duration` (seconds) is what it reports.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

AUDIO = [b"ID3\x04\x00first-frame", b"\xff\xfbsecond-frame", b"\xff\xfblast-frame"]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@dataclass
class FakeMedia:
    images: list[dict[str, Any]] = field(default_factory=list)
    speech: list[dict[str, Any]] = field(default_factory=list)
    forms: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)
    duration: float = 12.345
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/images/generations", self.generate)
        app.router.add_post("/v1/audio/speech", self.speak)
        app.router.add_post("/v1/audio/transcriptions", self.transcribe)
        return app

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.images.append(body)
        if body["model"] == "e400":
            err = {"message": "bad prompt", "type": "invalid_request_error", "param": None,
                   "code": None}  # fmt: skip
            return web.json_response({"error": err}, status=400)
        item = ({"b64_json": PNG} if body.get("response_format") == "b64_json"
                else {"url": "https://images.example/1.png"})  # fmt: skip
        return web.json_response({"created": 1, "data": [item] * body.get("n", 1)})

    async def speak(self, request: web.Request) -> web.StreamResponse:
        self.speech.append(await request.json())
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)
        await resp.write(AUDIO[0])
        self.first_sent.set()
        await asyncio.wait_for(self.release.wait(), 5)
        for chunk in AUDIO[1:]:
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def transcribe(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        form: dict[str, Any] = {}
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            if part.filename is not None:
                form[part.name or ""] = (part.filename, part.headers.get("Content-Type"),
                                         await part.read())  # fmt: skip
            else:
                form[part.name or ""] = await part.text()
        self.forms.append(form)
        kind = form.get("response_format", "json")
        if kind == "text":
            return web.Response(text="hello there\n", content_type="text/plain")
        if kind == "verbose_json":
            out = {"task": "transcribe", "language": "english", "duration": self.duration,
                   "text": "hello there", "segments": []}  # fmt: skip
        else:
            out = {"text": "hello there", "usage": {"type": "duration", "seconds": self.duration}}
        return web.Response(body=orjson.dumps(out), content_type="application/json")
