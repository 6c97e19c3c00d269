"""OpenAI's audio endpoints: /v1/audio/speech and /v1/audio/transcriptions requests, checked,
and what they are billed by. Pure.

Speech is billed per 1M input characters (Unicode code points, as OpenAI counts them).
A transcription is billed per second of audio when the upstream reports the duration
(`usage.seconds` in a `usage` of type "duration", or `duration` in `verbose_json`) and the
rate has a per-second price; otherwise per MB (10^6 bytes) of the uploaded file, which is
also what is held before the call, since the duration is not known then.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

import orjson

from hubproxy.errors import PayloadTooLarge
from hubproxy.providers.base import MediaUsage
from hubproxy.providers.openai.chat import bad

SPEECH_FORMATS = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})
MAX_SPEECH_CHARS = 4096
# What OpenAI's transcription accepts: audio of any kind, and video/mp4 and video/webm.
AUDIO_EXTRA = frozenset({"video/mp4", "video/webm"})
TRANSCRIPTION_FORMATS = frozenset({"json", "text", "srt", "verbose_json", "vtt",
                                   "diarized_json"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    model: str
    input: str
    voice: str
    response_format: str

    def usage(self) -> MediaUsage:
        return MediaUsage(chars=len(self.input))


def speech_request(body: Any) -> SpeechRequest:
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    model, text, voice = body.get("model"), body.get("input"), body.get("voice")
    if not isinstance(model, str) or not model.strip():
        raise bad("'model' must be a non-empty string.", "model")
    if not isinstance(text, str) or not text:
        raise bad("'input' must be a non-empty string.", "input")
    if len(text) > MAX_SPEECH_CHARS:
        raise bad(f"'input' may have at most {MAX_SPEECH_CHARS} characters.", "input")
    if isinstance(voice, dict) and isinstance(voice.get("id"), str):
        voice = voice["id"]  # a custom voice, {"id": ...}
    if not isinstance(voice, str) or not voice:
        raise bad("'voice' must be a voice name.", "voice")
    fmt = body.get("response_format", "mp3")
    if fmt not in SPEECH_FORMATS:
        raise bad(f"'response_format' must be one of {', '.join(sorted(SPEECH_FORMATS))}.",
                  "response_format", "invalid_value")  # fmt: skip
    return SpeechRequest(model.strip(), text, voice, str(fmt))


def check_upload(content_type: str | None, size: int, limit: int) -> None:
    """A transcription's uploaded file: audio (400 otherwise), within `limit` bytes (413)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if not (mime.startswith("audio/") or mime in AUDIO_EXTRA):
        raise bad(f"'file' must be audio (audio/*, video/mp4 or video/webm); got {mime or 'none'}.",
                  "file", "invalid_file_type")  # fmt: skip
    if size > limit:
        raise PayloadTooLarge(f"'file' is {size} bytes; at most {limit} are accepted.")
    if size == 0:
        raise bad("'file' is empty.", "file")


def check_transcription_fields(fields: dict[str, str]) -> str:
    """The multipart form's text fields (model, response_format ...); returns the model."""
    model = fields.get("model", "").strip()
    if not model:
        raise bad("'model' is required.", "model")
    fmt = fields.get("response_format")
    if fmt is not None and fmt not in TRANSCRIPTION_FORMATS:
        raise bad(f"'response_format' must be one of {', '.join(sorted(TRANSCRIPTION_FORMATS))}.",
                  "response_format", "invalid_value")  # fmt: skip
    return model


def transcription_usage(reply: bytes, upload_bytes: int) -> MediaUsage:
    """What a transcription is billed by: its reported duration, else the upload's size."""
    try:
        obj = orjson.loads(reply)
    except orjson.JSONDecodeError:
        obj = None  # text, srt, vtt: no duration in them
    seconds: Any = None
    if isinstance(obj, dict):
        usage = obj.get("usage")
        if isinstance(usage, dict) and usage.get("type") == "duration":
            seconds = usage.get("seconds")
        if seconds is None:
            seconds = obj.get("duration")
    ms = milliseconds(seconds)
    return MediaUsage(milliseconds=ms, bytes=upload_bytes)


def milliseconds(seconds: Any) -> int | None:
    """Seconds (a JSON number) as whole milliseconds, rounded up; None if not a duration."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        value = Decimal(repr(seconds)) * 1000
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return int(value.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Upload:
    """A transcription's form, as received: its text fields in order (a name may repeat, as
    `timestamp_granularities[]` does), and the file."""

    fields: tuple[tuple[str, str], ...]
    file: bytes
    filename: str
    content_type: str
    boundary: str = field(default_factory=lambda: "hubproxy-" + os.urandom(12).hex())

    @property
    def size(self) -> int:
        return len(self.file)

    def encode(self, model: str) -> tuple[bytes, str]:
        """The form for the upstream, whose model name is `model`: (body, Content-Type)."""
        dash = b"--" + self.boundary.encode("ascii")
        out: list[bytes] = []
        for name, given in self.fields:
            value = model if name == "model" else given
            out += [dash, b"\r\n", _disposition(name), b"\r\n\r\n", value.encode(), b"\r\n"]
        out += [dash, b"\r\n", _disposition("file", self.filename), b"\r\nContent-Type: ",
                self.content_type.encode("latin-1", "replace"), b"\r\n\r\n", self.file,
                b"\r\n", dash, b"--\r\n"]  # fmt: skip
        return b"".join(out), f"multipart/form-data; boundary={self.boundary}"


def _disposition(name: str, filename: str | None = None) -> bytes:
    """A form part's Content-Disposition; quotes and line breaks in names are escaped (as
    browsers do, per the HTML standard)."""

    def quoted(text: str) -> str:
        return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")

    out = f'Content-Disposition: form-data; name="{quoted(name)}"'
    if filename is not None:
        out += f'; filename="{quoted(filename)}"'
    return out.encode("utf-8")
