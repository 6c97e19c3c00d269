"""OpenAI's /v1/images/generations request, checked, and what it is billed by. Pure.

A request names `model` and `prompt`, and may set `n` (1-10), `size`, `quality` and
`response_format` (url or b64_json). An unknown size or quality is a 400: it would otherwise
reach the upstream and be billed at a price that does not exist. The call is billed per image
at the rate's variant for "size/quality" (else its per-image price); `params` is what the
call's row records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubproxy.providers.base import JSON, MediaUsage
from hubproxy.providers.openai.chat import bad

SIZES = frozenset({"auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536",
                   "1792x1024", "1024x1792"})  # fmt: skip
QUALITIES = frozenset({"auto", "standard", "hd", "low", "medium", "high"})
FORMATS = frozenset({"url", "b64_json"})
MAX_N = 10
MAX_PROMPT = 32_000  # characters (gpt-image-1's limit; dall-e-3's is 4,000)


@dataclass(frozen=True, slots=True)
class ImageRequest:
    model: str
    prompt: str
    n: int
    size: str
    quality: str
    response_format: str

    @property
    def variant(self) -> str:
        return f"{self.size}/{self.quality}"

    def usage(self) -> MediaUsage:
        """What the call is billed (and held) by: n images of this size and quality."""
        return MediaUsage(images=self.n, variant=self.variant)

    def params(self) -> JSON:
        return {"n": self.n, "size": self.size, "quality": self.quality}


def generation_request(body: Any) -> ImageRequest:
    """Check an images/generations body; any malformed field is a 400 naming it."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or not model.strip():
        raise bad("'model' must be a non-empty string.", "model")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("'prompt' must be a non-empty string.", "prompt")
    if len(prompt) > MAX_PROMPT:
        raise bad(f"'prompt' may have at most {MAX_PROMPT} characters.", "prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        raise bad(f"'n' must be an integer from 1 to {MAX_N}.", "n")
    size = _choice(body, "size", SIZES, "1024x1024")
    quality = _choice(body, "quality", QUALITIES, "standard")
    response_format = _choice(body, "response_format", FORMATS, "url")
    return ImageRequest(model.strip(), prompt, n, size, quality, response_format)


def _choice(body: JSON, name: str, allowed: frozenset[str], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise bad(
            f"'{name}' must be one of {', '.join(sorted(allowed))}; got {value!r}.",
            name,
            "invalid_value",
        )
    return value


def images_of(reply: Any) -> int:
    """How many images an upstream's answer holds (what is billed if it made fewer than n)."""
    data = reply.get("data") if isinstance(reply, dict) else None
    return len(data) if isinstance(data, list) else 0
