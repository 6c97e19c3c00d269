"""OpenAI's wire format, spoken by OpenAI and every OpenAI-compatible server: bytes pass through."""

from __future__ import annotations

import re
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
from hubproxy.providers.sse import Event

DONE = b"data: [DONE]\n\n"
# `"usage":null`, as the upstream adds it to every chunk once include_usage is on. A JSON
# string cannot hold an unescaped quote, so this never matches inside generated text.
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,?')


def loads(body: bytes, what: str) -> Any:
    """Parse upstream JSON; output we cannot read is the upstream's fault: 502."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            f"The upstream sent malformed {what}.", code="bad_upstream_response"
        ) from None


def usage_of(obj: Any) -> Usage | None:
    """Usage from an OpenAI `usage` object (chat or embeddings), or None."""
    if not isinstance(obj, dict):
        return None
    details = obj.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(obj.get("prompt_tokens") or 0),
        completion_tokens=int(obj.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


# OpenAI's answer to a path it does not serve: 404 "Invalid URL (POST /chat/completions)".
_INVALID_URL = re.compile(r"^Invalid URL \([A-Z]+ ([^)\s]+)\)")


def error_of(status: int, body: bytes, where: str = "") -> HubError:
    """An OpenAI-shaped error answer (or anything else an OpenAI-compatible server sends).
    `where` is the path the answer is for, as far as it is known (see route_missing)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    err = obj.get("error") if isinstance(obj, dict) else None
    if status == 404 and route_missing(obj):
        said = _INVALID_URL.match(str(err.get("message"))) if isinstance(err, dict) else None
        return upstream_not_found(said.group(1) if said else where)
    if isinstance(err, dict):
        return from_upstream(
            status,
            str(err.get("message") or ""),
            type=err.get("type") if isinstance(err.get("type"), str) else None,
            code=str(err["code"]) if err.get("code") is not None else None,
            param=err.get("param") if isinstance(err.get("param"), str) else None,
        )
    text = body[:500].decode("utf-8", "replace").strip()
    return from_upstream(status, str(err) if isinstance(err, str) else text)


def route_missing(obj: Any) -> bool:
    """Whether a 404 answer says the path does not exist, rather than that a model (or other
    resource) does not: no error object of the API's own (a web server's page, FastAPI's
    {"detail": "Not Found"}), OpenAI's "Invalid URL (...)", or Azure's "Resource not found"
    (also its answer to a wrong api-version). A model the server does not have comes as an
    error object naming it (OpenAI's model_not_found, Azure's DeploymentNotFound, vLLM's
    top-level {"object": "error", "message": ...}), and stays a 404."""
    if not isinstance(obj, dict):
        return True
    err = obj.get("error")
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        return (
            _INVALID_URL.match(message) is not None
            or (str(err.get("code")) == "404" and message == "Resource not found")
            or not message
        )
    if isinstance(err, str):  # {"error": "model 'x' not found"} (Ollama's native shape)
        return not err
    return not (obj.get("object") == "error" and isinstance(obj.get("message"), str))


def wants_usage(body: JSON) -> bool:
    """Did the client ask for the final usage chunk itself?"""
    opts = body.get("stream_options")
    return isinstance(opts, dict) and opts.get("include_usage") is True


class OpenAIStream:
    """Pass-through with a usage tap. When the client did not ask for usage, the upstream was
    asked anyway: the usage-only chunk and every `"usage":null` are cut, so the client gets
    the bytes it would have had without the injection.

    The usage is final when it comes in OpenAI's usage chunk (no choices), or as the last
    one seen once [DONE] ends the stream: some OpenAI-compatible servers (vLLM's
    continuous_usage_stats) put the running usage on every chunk, which a stream cut short
    must not be billed at.

    Only chunks that may carry usage or an error, or that do not look like a JSON object, are
    parsed: a proxy passes the rest on as they are. The generated text, needed only for an
    estimate when no usage comes, is measured (in billing.tokens units) from each chunk's size
    less the size of the chunk's fixed fields, learnt from the first chunk with content."""

    __slots__ = (
        "_end",
        "_running",
        "_skeleton",
        "_strip",
        "finished",
        "prompt_tokens",
        "text_chars",
        "usage",
    )

    def __init__(self, strip_usage: bool) -> None:
        self._strip = strip_usage
        self._end = DONE
        self._skeleton = -1  # units of a content chunk that are not content; -1: not learnt
        self._running: Usage | None = None  # usage seen on a chunk with choices: maybe not final
        self.usage: Usage | None = None
        self.prompt_tokens: int | None = None
        self.finished = False
        self.text_chars = 0

    def feed(self, event: Event) -> bytes:
        data = event.data
        if data is None:
            return event.raw  # a comment or keep-alive: the client's connection wants it too
        if data == b"[DONE]":
            self.finished = True
            self._end = event.raw
            if self.usage is None:
                self.usage = self._running  # the stream is complete: its last count is final
            return b""
        raw = event.raw
        if self._strip and b'"usage":null' in data:  # as OpenAI writes it: no parse needed
            raw = raw.replace(b',"usage":null', b"", 1)
            data = data.replace(b',"usage":null', b"", 1)
        if (
            b'"usage"' in data
            or b'"error"' in data
            or self._skeleton < 0
            or data[:1] != b"{"  # not an object's envelope: let the parser say what it is
            or data[-1:] != b"}"
        ):
            return self._parsed(data, raw)
        self.text_chars += max(0, _size(data) - self._skeleton)
        return raw

    def feed_chunk(self, chunk: bytes, out: list[bytes]) -> int:
        """Take the leading whole events of `chunk` (read when no event was half read) that
        need no decoder, their client bytes appended to `out`; returns how many bytes were
        taken, for the decoder and `feed` to take the rest. The client gets the same bytes
        and the call the same measure as from the decoder and `feed`.

        Until the skeleton is learnt, simple events (one `data:` line) go to `feed` one by
        one. Then the events up to the first that may carry usage, an error or [DONE] pass
        undecoded if every one is plain (see `_plain`), as one run: a stream's reads often
        hold many events, its tail with them."""
        if self._skeleton >= 0:  # the common case first: the whole read is plain
            passed = self._plain(chunk)
            if passed is not None:
                out.append(passed)
                return len(chunk)
        taken = 0
        while self._skeleton < 0 and not self.finished:
            end = chunk.find(b"\n\n", taken)
            line = chunk[taken:end]
            if end < 0 or not line.startswith(b"data: ") or b"\n" in line or b"\r" in line:
                return taken
            out.append(self.feed(Event(None, line[6:], chunk[taken : end + 2])))
            taken = end + 2
        if taken == len(chunk) or self.finished:
            return taken
        run = chunk[taken:] if taken else chunk
        if taken and (passed := self._plain(run)) is not None:
            out.append(passed)
            return len(chunk)
        stop = len(run)  # else the events before the first that may be special may pass
        for marker in (b'"usage":{', b'"error"', b"[DONE]"):
            at = run.find(marker, 0, stop)
            if at >= 0:
                stop = at
        stop = run.rfind(b"\n\n", 0, stop) + 2  # the start of the event it is in
        if stop < 2 or (passed := self._plain(run[:stop])) is None:
            return taken
        out.append(passed)
        return taken + stop

    def _plain(self, run: bytes) -> bytes | None:
        """The client bytes of `run`, whole events that `feed` would pass on without parsing
        (one `data: {...}` line each, ASCII, no usage but the null the tap cuts, no error),
        its text measured; None if it is anything else."""
        if (
            not run.endswith(b"}\n\n")
            or not run.startswith(b"data: {")
            or not run.isascii()
            or b"\r" in run
            or b'"error"' in run
        ):
            return None
        if self._strip:
            run = run.replace(b',"usage":null', b"")
            if b'"usage"' in run:
                return None
        elif run.count(b'"usage"') != run.count(b'"usage":null'):
            return None
        skeleton = self._skeleton
        if run.find(b"\n") == len(run) - 2:  # one event: its one newline ends it
            self.text_chars += max(0, len(run) - 8 - skeleton)
            return run
        sizes = _event_sizes(run)
        if sizes is None:
            return None
        self.text_chars += sum(max(0, size - 6 - skeleton) for size in sizes)
        return run

    def _parsed(self, data: bytes, raw: bytes) -> bytes:
        obj = loads(data, "stream data")
        if not isinstance(obj, dict):
            raise UpstreamError("The upstream sent a stream event that is not an object.")
        if "error" in obj:
            raise error_of(500, data)
        choices = obj.get("choices")
        for choice in choices or ():
            delta = choice.get("delta") or {}
            # A chat chunk's delta, or a legacy completion chunk's text.
            chars = units(delta.get("content") or choice.get("text") or "")
            for call in delta.get("tool_calls") or ():
                chars += units((call.get("function") or {}).get("arguments") or "")
            self.text_chars += chars
            if chars and self._skeleton < 0:
                self._skeleton = _size(data) - chars
        if "usage" not in obj:
            return raw
        usage = obj["usage"]
        if usage is None:  # written some other way than OpenAI's compact JSON
            return _NULL_USAGE.sub(b"", raw, count=1) if self._strip else raw
        counted = usage_of(usage)
        if counted is not None:
            self.prompt_tokens = counted.prompt_tokens or self.prompt_tokens
            if choices:
                self._running = counted
            else:
                self.usage = counted  # OpenAI's usage chunk: the final count
        if self._strip and not choices:
            return b""  # the usage-only chunk that only the gateway asked for
        return raw

    def end(self) -> bytes:
        return self._end


def _event_sizes(run: bytes) -> list[int] | None:
    """The length of each `data: {...}` line of `run`, whole events of one line each (it
    starts and ends as one), or None if it is anything else. Every newline must end an event,
    so that `}\n\ndata: {` is found exactly where one event ends and the next begins."""
    lines = run.split(b"\n")  # line, "", line, "", ..., line, "", ""
    events = lines[0:-1:2]
    if any(lines[1::2]) or run.count(b"}\n\ndata: {") != len(events) - 1:
        return None
    return list(map(len, events))


def _asking_usage(body: JSON, model: str, stream: bool) -> JSON:
    """`body` for `model`; a stream asks for the usage chunk (the tap cuts it out again when
    the client did not ask for it)."""
    out = {**body, "model": model}
    if stream and not wants_usage(body):
        opts = body.get("stream_options")
        out["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return out


def _size(data: bytes) -> int:
    """The size of a chunk in billing.tokens units: its length if it is ASCII (as JSON with
    escaped non-ASCII text is), else that of its text."""
    return len(data) if data.isascii() else units(data.decode("utf-8", "replace"))


class OpenAIProvider:
    """Chat completions and embeddings against `base_url` (…/v1); for OpenAI itself (type
    "openai") also the Responses API and legacy text completions, passed through."""

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._chat_url = f"{settings.base_url}/chat/completions"
        self._embeddings_url = f"{settings.base_url}/embeddings"
        self._headers = dict(settings.headers)
        # Which of OpenAI's other endpoints the upstream serves: OpenAI's own API does; the
        # demo (answered in the process) and Azure's per-deployment URLs do not.
        native = settings.type == "openai"
        self.speaks_responses = native
        self.speaks_completions = native

    def auth_headers(self, api_key: str) -> dict[str, str]:
        # A server without keys (a local vLLM, or the demo) gets no Authorization header.
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_request(self, body: JSON, model: str, stream: bool) -> UpstreamRequest:
        out = _asking_usage(body, model, stream)
        return UpstreamRequest(self._chat_url, orjson.dumps(out), self._headers)

    def chat_reply(self, body: bytes) -> Reply:
        obj = loads(body, "JSON")
        if not isinstance(obj, dict) or "choices" not in obj:
            raise UpstreamError("The upstream answer has no choices.", code="bad_upstream_response")
        return Reply(body, usage_of(obj.get("usage")))

    def chat_stream(self, body: JSON) -> OpenAIStream:
        return OpenAIStream(strip_usage=not wants_usage(body))

    def embeddings_request(self, body: JSON, model: str) -> UpstreamRequest:
        return UpstreamRequest(
            self._embeddings_url, orjson.dumps({**body, "model": model}), self._headers
        )

    def responses_request(self, body: JSON, model: str) -> UpstreamRequest:
        """A Responses API request (its history already in `input`), for the model."""
        return UpstreamRequest(
            f"{self.settings.base_url}/responses",
            orjson.dumps({**body, "model": model}),
            self._headers,
        )

    def completions_request(self, body: JSON, model: str, stream: bool) -> UpstreamRequest:
        """A legacy text completions request (its stream is tapped by `chat_stream`'s)."""
        out = _asking_usage(body, model, stream)
        return UpstreamRequest(
            f"{self.settings.base_url}/completions", orjson.dumps(out), self._headers
        )

    def completions_reply(self, body: bytes) -> Reply:
        obj = loads(body, "JSON")
        if not isinstance(obj, dict) or "choices" not in obj:
            raise UpstreamError("The upstream answer has no choices.", code="bad_upstream_response")
        return Reply(body, usage_of(obj.get("usage")))

    def embeddings_reply(self, body: bytes) -> Reply:
        obj = loads(body, "JSON")
        if not isinstance(obj, dict) or "data" not in obj:
            raise UpstreamError("The upstream answer has no data.", code="bad_upstream_response")
        return Reply(body, usage_of(obj.get("usage")))

    def error(self, status: int, body: bytes, *, path: str = "") -> HubError:
        """`path`: the URL path the answer is for, when the caller passes it."""
        return error_of(status, body, provider_path(self.settings.base_url, path))
