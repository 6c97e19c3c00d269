"""A fake Gemini API (v1beta generateContent, streamGenerateContent, batchEmbedContents).

Served under /v1beta/models/{model}:{method}. The model name picks the answer:
  gemini-ja         response_ja.json / stream_text_ja.sse (also for any unknown name)
  gemini-crlf       stream_unicode_crlf.sse: CRLF lines, a thought part, cached tokens,
                    finishReason MAX_TOKENS
  gemini-blocked    response_blocked.json: the prompt was blocked, no candidate
  gemini-midstream  the first event of stream_text_ja.sse, then an in-stream error (503)
  gemini-cut        the first event of stream_text_ja.sse (running usageMetadata, no
                    finishReason), then the connection ends
  gemini-e429       429 RESOURCE_EXHAUSTED
  gemini-e400       400 INVALID_ARGUMENT
  gemini-e403       403 PERMISSION_DENIED
A request with tools whose last content carries no functionResponse gets the captured
functionCall answer (getWeather, Tokyo); the next request must send that functionCall back
and a functionResponse for it, and gets the text answer.

Requests are checked as Google checks them: the x-goog-api-key header (a wrong key is the
documented 400 API_KEY_INVALID), no key in the URL, `alt=sse` on a stream, no unknown fields,
user/model roles, one datum per part, base64 inline data, a functionResponse answering each
functionCall of the model turn before it. A failed check is a 400 INVALID_ARGUMENT naming
the problem. Every answer is written in small pieces (see wire.py).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.wire import Recorder, Seen, data

KEY = "AIzaSyUPSTREAM-secret-gemini-key-000001"
CALL = ("getWeather", {"location": "Tokyo"})  # what the captured functionCall asks
ERRORS = {
    "gemini-e429": (429, "gemini/error_429.json"),
    "gemini-e400": (400, "gemini/error_400.json"),
    "gemini-e403": (403, "gemini/error_403.json"),
}
REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
}
CONFIG_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "responseModalities",
}
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse")


def sse_event(obj_bytes: bytes) -> bytes:
    """One event the way Gemini writes them: the JSON on one data line, CRLF-free."""
    return b"data: " + orjson.dumps(orjson.loads(obj_bytes)) + b"\n\n"


def midstream_error() -> bytes:
    first = data("gemini/stream_text_ja.sse").split(b"\n\n")[0] + b"\n\n"
    return first + sse_event(data("gemini/error_503.json"))


@dataclass
class FakeGemini(Recorder):
    """State shared with the test: what arrived, what was sent, the function responses seen."""

    key: str = KEY
    function_responses: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1beta/models/{call}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        seen = await self.seen(request)
        model, _, method = request.match_info["call"].partition(":")
        if seen.header("x-goog-api-key") != self.key or "key" in seen.query:
            return await self.send(request, data("gemini/error_api_key_invalid.json"), status=400)
        if seen.header("authorization") is not None:
            return await self.invalid(request, "an Authorization header reached Google")
        if method == "batchEmbedContents":
            return await self.embed(request, seen, model)
        if method not in ("generateContent", "streamGenerateContent"):
            return await self.invalid(request, f"unknown method {method!r}", status=404)
        stream = method == "streamGenerateContent"
        if stream and seen.query.get("alt") != "sse":
            return await self.invalid(request, "this fake only speaks alt=sse streams")
        problem = check_request(seen.body) or self._check_function_round(seen.body)
        if problem is not None:
            return await self.invalid(request, problem)
        if model in ERRORS:
            status, name = ERRORS[model]
            return await self.send(request, data(name), status=status)
        contents = seen.body["contents"]
        wants_call = bool(seen.body.get("tools")) and not _responses(contents[-1])
        if not stream:
            name = "response_ja.json"
            if wants_call:
                name = "response_function_call.json"
            elif model == "gemini-blocked":
                name = "response_blocked.json"
            return await self.send(request, data(f"gemini/{name}"))
        if wants_call:
            raw = data("gemini/stream_function_call.sse")
        elif model == "gemini-crlf":
            raw = data("gemini/stream_unicode_crlf.sse")
        elif model == "gemini-blocked":
            raw = sse_event(data("gemini/response_blocked.json"))
        elif model == "gemini-midstream":
            raw = midstream_error()
        elif model == "gemini-cut":
            raw = data("gemini/stream_text_ja.sse").split(b"\n\n")[0] + b"\n\n"
        else:
            raw = data("gemini/stream_text_ja.sse")
        return await self.send(request, raw, content_type="text/event-stream")

    async def embed(self, request: web.Request, seen: Seen, model: str) -> web.StreamResponse:
        body = seen.body
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return await self.invalid(request, "requests: at least one request is required")
        for i, one in enumerate(requests):
            parts = (one.get("content") or {}).get("parts") if isinstance(one, dict) else None
            if one.get("model") != f"models/{model}":
                return await self.invalid(request, f"requests[{i}].model must be models/{model}")
            if not isinstance(parts, list) or not all(
                isinstance(p.get("text"), str) for p in parts
            ):
                return await self.invalid(request, f"requests[{i}].content needs text parts")
        if model in ERRORS:
            status, name = ERRORS[model]
            return await self.send(request, data(name), status=status)
        captured = data("gemini/embeddings_response.json")
        vectors = orjson.loads(captured)["embeddings"]
        if len(requests) == len(vectors):
            return await self.send(request, captured)
        out = {"embeddings": [vectors[i % len(vectors)] for i in range(len(requests))]}
        return await self.send(request, orjson.dumps(out))

    def _check_function_round(self, body: dict[str, Any]) -> str | None:
        contents = body["contents"]
        responses = _responses(contents[-1])
        if not responses:
            return None
        self.function_responses.extend(responses)
        if len(contents) < 2 or contents[-2]["role"] != "model":
            return "a functionResponse must follow a model turn with functionCall parts"
        calls = [p for p in contents[-2]["parts"] if "functionCall" in p]
        if not calls or "thoughtSignature" not in calls[0]:
            return "Function call is missing a thought_signature in functionCall parts"
        if [(c["functionCall"]["name"], c["functionCall"].get("args")) for c in calls] != [CALL]:
            return f"the functionCall came back changed: {calls}"
        if [r.get("name") for r in responses] != [CALL[0]]:
            return (
                "Please ensure that the number of function response parts is equal to the "
                f"number of function call parts of the function call turn: {responses}"
            )
        return None

    async def invalid(
        self, request: web.Request, message: str, status: int = 400
    ) -> web.StreamResponse:
        name = "INVALID_ARGUMENT" if status == 400 else "NOT_FOUND"
        body = {"error": {"code": status, "message": message, "status": name}}
        return await self.send(request, orjson.dumps(body), status=status)


def _responses(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["functionResponse"] for p in content.get("parts", ()) if "functionResponse" in p]


def check_request(body: Any) -> str | None:
    """What Gemini would refuse in this GenerateContentRequest, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = set(body) - REQUEST_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}"
    unknown = set(body.get("generationConfig") or {}) - CONFIG_FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name 'generationConfig.{min(unknown)}'"
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "contents is not specified"
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"contents[{i}].role must be user or model"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"contents[{i}].parts must not be empty"
        for j, part in enumerate(parts):
            problem = _check_part(part)
            if problem:
                return f"contents[{i}].parts[{j}]: {problem}"
    system = body.get("systemInstruction")
    if system is not None and not all("text" in p for p in system.get("parts", [None])):
        return "systemInstruction must be text parts"
    return None


def _check_part(part: Any) -> str | None:
    if not isinstance(part, dict):
        return "a part must be an object"
    held = [key for key in PART_DATA if key in part]
    if len(held) != 1:
        return f"a part holds exactly one datum, not {held}"
    kind = held[0]
    if kind == "inlineData":
        blob = part["inlineData"]
        if not isinstance(blob.get("mimeType"), str):
            return "inlineData.mimeType is required"
        try:
            base64.b64decode(blob.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            return "inlineData.data is not valid base64"
    if kind == "fileData":
        ref = part["fileData"]
        if not isinstance(ref.get("mimeType"), str) or not isinstance(ref.get("fileUri"), str):
            return "fileData needs mimeType and fileUri"
    if kind == "functionResponse":
        response = part["functionResponse"]
        if not isinstance(response.get("name"), str) or not isinstance(
            response.get("response"), dict
        ):
            return "functionResponse needs a name and an object response"
    return None
