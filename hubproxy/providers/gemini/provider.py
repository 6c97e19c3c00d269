"""Google's Gemini API (Generative Language v1beta) wire format: the `gemini` provider type.

Requests are translated in gemini_request.py. Answers (GenerateContentResponse, whole or as
`streamGenerateContent?alt=sse` events) become OpenAI chat completions here. A Gemini stream
has no terminator: it is finished when a candidate carries a finishReason. Every event may
carry usageMetadata, the running totals so far: only the finishing event's are final, so a
stream cut before it is billed at an estimate of what was relayed, not at a running total.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from hubproxy.billing.tokens import units
from hubproxy.config import ProviderSettings
from hubproxy.errors import (
    HubError,
    UpstreamError,
    from_upstream,
    provider_path,
    upstream_not_found,
)
from hubproxy.providers.base import JSON, Reply, UpstreamRequest, Usage
from hubproxy.providers.gemini.request import embed_body, generate_body, model_path
from hubproxy.providers.openai.chat import DONE, ChunkWriter, completion, tool_call_json
from hubproxy.providers.openai.provider import loads, wants_usage
from hubproxy.providers.sse import Event

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# google.rpc status names, for an error body whose HTTP status is not known (in a stream).
STATUS_BY_NAME = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


def finish_reason(reason: str, made_calls: bool) -> str:
    finish = FINISH.get(reason, "stop")
    return "tool_calls" if made_calls and finish == "stop" else finish


def usage_of(meta: Any) -> Usage | None:
    """usageMetadata → Usage: the thinking tokens are generated (and billed) output; tokens
    spent on tool-use results are input."""
    if not isinstance(meta, dict):
        return None

    def count(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return Usage(
        prompt_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        completion_tokens=count("candidatesTokenCount") + count("thoughtsTokenCount"),
        cached_tokens=count("cachedContentTokenCount"),
    )


def error_of(obj: Any, status: int | None = None) -> HubError:
    """{"error": {"code", "message", "status"}} (or a list holding one) → HubError."""
    if isinstance(obj, list) and obj:
        obj = obj[0]
    err = obj.get("error") if isinstance(obj, dict) else None
    err = err if isinstance(err, dict) else {}
    message = err.get("message")
    message = message if isinstance(message, str) else ""
    name = err.get("status")
    name = name if isinstance(name, str) else None
    if status is None:
        code = err.get("code")
        known = STATUS_BY_NAME.get(name or "", 500)
        status = code if isinstance(code, int) and code >= 400 else known
    details = err.get("details")
    details = details if isinstance(details, list) else []
    if name == "UNAUTHENTICATED" or any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details
    ):
        status = 401  # Gemini says 400 for a bad key: it is the gateway's credential
    return from_upstream(status, message, code=name)


def read_parts(candidate: Any) -> tuple[str, str, list[tuple[str, Any]]]:
    """(text, thought text, [(function name, args)]) of a candidate's parts."""
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[tuple[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") is True else text).append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            calls.append((call["name"], call.get("args") or {}))
    return "".join(text), "".join(thoughts), calls


def _first_candidate(obj: JSON) -> JSON | None:
    candidates = obj.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        first: JSON = candidates[0]
        return first
    return None


def _blocked(obj: JSON) -> bool:
    feedback = obj.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _response_id(obj: JSON) -> str:
    rid = obj.get("responseId")
    return rid if isinstance(rid, str) and rid else secrets.token_hex(8)


class GeminiStream:
    """GenerateContentResponse SSE events → OpenAI chat.completion.chunk events."""

    __slots__ = (
        "_calls",
        "_include_usage",
        "_rid",
        "_writer",
        "created",
        "finished",
        "prompt_tokens",
        "text_chars",
        "usage",
    )

    def __init__(self, include_usage: bool, created: int | None = None) -> None:
        self._include_usage = include_usage
        self.created = created
        self._writer: ChunkWriter | None = None
        self._rid = ""
        self._calls = 0
        self.usage: Usage | None = None  # the finishing event's totals, once it came
        self.prompt_tokens: int | None = None  # the prompt's count, given by every event
        self.finished = False
        self.text_chars = 0

    def feed(self, event: Event) -> bytes:
        if event.data is None:
            return b""
        obj = loads(event.data, "stream data")
        if isinstance(obj, dict) and "error" in obj:
            raise error_of(obj)
        if not isinstance(obj, dict):
            raise UpstreamError("The upstream sent a stream event that is not an object.")
        usage = usage_of(obj.get("usageMetadata"))
        if usage is not None:
            self.prompt_tokens = usage.prompt_tokens or self.prompt_tokens
            if self.finished:
                self.usage = usage  # an event after the finishing one: totals still final
        if self.finished:
            return b""
        out: list[bytes] = []
        writer = self._writer
        if writer is None:
            self._rid = _response_id(obj)
            model = obj.get("modelVersion")
            writer = self._writer = ChunkWriter(
                f"chatcmpl-{self._rid}", model if isinstance(model, str) else "", self.created
            )
            out.append(writer.chunk({"role": "assistant", "content": ""}))
        candidate = _first_candidate(obj)
        reason = candidate.get("finishReason") if candidate else None
        text, thoughts, calls = read_parts(candidate)
        if thoughts:
            self.text_chars += units(thoughts)
            out.append(writer.chunk({"reasoning_content": thoughts}))
        if text:
            self.text_chars += units(text)
            out.append(writer.chunk({"content": text}))
        for name, args in calls:
            arguments = orjson.dumps(args).decode()
            self.text_chars += units(arguments)
            call = tool_call_json(self._calls, f"call_{self._rid}_{self._calls}", name, arguments)
            self._calls += 1
            out.append(writer.chunk({"tool_calls": [call]}))
        if candidate is None and _blocked(obj):
            reason = "SAFETY"  # the prompt itself was blocked: no candidate will come
        if isinstance(reason, str) and reason:
            out.append(writer.chunk({}, finish_reason(reason, self._calls > 0)))
            self.finished = True
            self.usage = usage  # the final totals (None if this event has none: estimated)
            if self._include_usage and self.usage is not None:
                out.append(writer.usage_chunk(self.usage))
        return b"".join(out)

    def end(self) -> bytes:
        return DONE


class GeminiProvider:
    """Chat and embeddings against `base_url` (…/v1beta)."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._base = settings.base_url
        self._headers = dict(settings.headers)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def chat_request(self, body: JSON, model: str, stream: bool) -> UpstreamRequest:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{self._base}/{model_path(model)}:{method}"
        return UpstreamRequest(url, orjson.dumps(generate_body(body)), self._headers)

    def chat_reply(self, body: bytes) -> Reply:
        obj = loads(body, "JSON")
        if not isinstance(obj, dict):
            raise UpstreamError(
                "The upstream answer is not an object.", code="bad_upstream_response"
            )
        candidate = _first_candidate(obj)
        if candidate is None and not _blocked(obj):
            raise UpstreamError(
                "The upstream answer has no candidates.", code="bad_upstream_response"
            )
        rid = _response_id(obj)
        text, thoughts, calls = read_parts(candidate)
        message: JSON = {"role": "assistant", "content": text or (None if calls else "")}
        if thoughts:
            message["reasoning_content"] = thoughts
        if calls:
            message["tool_calls"] = [
                tool_call_json(None, f"call_{rid}_{n}", name, orjson.dumps(args).decode())
                for n, (name, args) in enumerate(calls)
            ]
        message["refusal"] = None
        reason = candidate.get("finishReason") if candidate else "SAFETY"
        usage = usage_of(obj.get("usageMetadata"))
        model = obj.get("modelVersion")
        out = completion(
            f"chatcmpl-{rid}",
            model if isinstance(model, str) else "",
            message,
            finish_reason(reason if isinstance(reason, str) else "STOP", bool(calls)),
            usage,
        )
        return Reply(out, usage)

    def chat_stream(self, body: JSON) -> GeminiStream:
        return GeminiStream(include_usage=wants_usage(body))

    def embeddings_request(self, body: JSON, model: str) -> UpstreamRequest:
        url = f"{self._base}/{model_path(model)}:batchEmbedContents"
        return UpstreamRequest(url, orjson.dumps(embed_body(body, model)), self._headers)

    def embeddings_reply(self, body: bytes) -> Reply:
        """Gemini reports no token counts for embeddings: usage is None and the gateway
        estimates it; the body's own usage says 0 until the gateway fills it in."""
        obj = loads(body, "JSON")
        embeddings = obj.get("embeddings") if isinstance(obj, dict) else None
        if not isinstance(embeddings, list):
            raise UpstreamError(
                "The upstream answer has no embeddings.", code="bad_upstream_response"
            )
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": e.get("values", []) if isinstance(e, dict) else [],
            }
            for i, e in enumerate(embeddings)
        ]
        out = {
            "object": "list",
            "data": data,
            "model": "",
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
        return Reply(orjson.dumps(out), None)

    def error(self, status: int, body: bytes, *, path: str = "") -> HubError:
        """`path`: the URL path the answer is for, when the caller passes it. A 404 without
        Google's error object (Google's HTML page for a path it does not serve) is the
        base_url at fault: 502; a model it does not have (NOT_FOUND) stays a 404."""
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, list) and obj:
            obj = obj[0]
        if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
            return error_of(obj, status)
        if status == 404:
            return upstream_not_found(provider_path(self.settings.base_url, path))
        return from_upstream(status, body[:500].decode("utf-8", "replace").strip())
