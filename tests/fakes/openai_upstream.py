"""A fake OpenAI-compatible upstream on loopback that misbehaves on purpose.

The model name picks the behaviour:
  ok            a normal answer ("Hello from upstream", streamed word by word)
  e429 / e500 / e401 / e400   that error status, with an OpenAI error body
  hang          accepts, then never answers (not even headers)
  stall         streams two chunks, then goes silent
  cut           streams two chunks, then drops the connection
  malformed     streams one good chunk, then one that is not JSON
  gated         streams one chunk, then waits for `release` before the rest
  late          sends its head, then waits for `release` before the first chunk
  nousage       a normal answer without any usage (some servers do that)
  runningcut    every chunk carries the running usage so far (as vLLM's continuous_usage_stats
                does), and the connection drops after the second word
A whole answer honours `n`: n choices, and n times the completion tokens.
The key can misbehave too: one containing "revoked" gets 401, "limited" gets 429.
Streams follow OpenAI: with stream_options.include_usage, every chunk has "usage": null and
a usage-only chunk precedes [DONE]. /v1/responses and /v1/completions: see openai_responses.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import openai_responses

WORDS = ["Hello", " from", " upstream", " ✓"]
USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    """State shared with the test: what arrived, and levers to pull."""

    requests: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/completions", self.completions)
        return app

    async def responses(self, request: web.Request) -> web.StreamResponse:
        return await openai_responses.responses(self, request)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await openai_responses.completions(self, request)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Seen(request.path, dict(request.headers), body))
        key = request.headers.get("Authorization", "")
        if "revoked" in key or "limited" in key:
            return error(401 if "revoked" in key else 429)
        model = body.get("model", "")
        if model.startswith("e") and model[1:].isdigit():
            return error(int(model[1:]))
        if model == "hang":
            await asyncio.sleep(3600)
        if not body.get("stream"):
            return web.json_response(completion(body, usage=model != "nousage"))
        return await self.stream(request, body, model)

    async def stream(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Connection": "keep-alive, x-hop",
                "x-hop": "must not pass",
                "Set-Cookie": "session=must-not-pass",
                "x-request-id": "req_upstream_1",
            }
        )
        await resp.prepare(request)
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True
        try:
            for i, raw in enumerate(chunks(body, with_usage and model != "nousage")):
                if model == "malformed" and i == 2:
                    await resp.write(b"data: {this is not json\n\n")
                    return resp
                if model == "runningcut":
                    raw = running_usage(raw, i)
                if model in ("stall", "cut", "runningcut") and i == 2 + (model == "runningcut"):
                    if model != "stall":
                        assert request.transport is not None
                        request.transport.abort()
                        return resp
                    await asyncio.sleep(3600)
                if (model == "gated" and i == 2) or (model == "late" and i == 0):
                    self.first_sent.set()  # "late": only the head has gone out
                    await self.release.wait()
                await resp.write(raw)
            await resp.write(b"data: [DONE]\n\n")
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnected.set()
            raise
        return resp

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Seen(request.path, dict(request.headers), body))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
            for i, _ in enumerate(inputs)
        ]
        usage = {"prompt_tokens": 2 * len(inputs), "total_tokens": 2 * len(inputs)}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )


def error(status: int) -> web.Response:
    body = {
        "error": {
            "message": f"upstream says {status} (key sk-upstream-SECRET-should-not-leak-0001)",
            "type": "invalid_request_error" if status < 500 else "server_error",
            "param": None,
            "code": f"code_{status}",
        }
    }
    headers = {"Retry-After": "7"} if status == 429 else {}
    return web.json_response(body, status=status, headers=headers)


HEAD = {"id": "chatcmpl-fake", "created": 1700000000, "system_fingerprint": "fp_fake"}


def completion(body: dict[str, Any], *, usage: bool = True) -> dict[str, Any]:
    n = body.get("n") or 1
    out = {
        **HEAD,
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": "".join(WORDS), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i in range(n)
        ],
    }
    if usage:
        completion_tokens = USAGE["completion_tokens"] * n
        out["usage"] = {
            **USAGE,
            "completion_tokens": completion_tokens,
            "total_tokens": USAGE["prompt_tokens"] + completion_tokens,
        }
    return out


def running_usage(raw: bytes, i: int) -> bytes:
    """Chunk `i` with the usage so far in it: the prompt, and one token a word sent."""
    obj = orjson.loads(raw[len(b"data: ") :])
    words = max(i, 0)
    obj["usage"] = {
        "prompt_tokens": USAGE["prompt_tokens"],
        "completion_tokens": words,
        "total_tokens": USAGE["prompt_tokens"] + words,
    }
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chunks(body: dict[str, Any], with_usage: bool) -> list[bytes]:
    """OpenAI's serialisation: compact JSON, "usage": null last when include_usage is on."""
    head = {**HEAD, "object": "chat.completion.chunk", "model": body["model"]}
    extra = {"usage": None} if with_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**head, "choices": [choice], **extra}) + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""}, None)]
    out += [chunk({"content": w}, None) for w in WORDS]
    out.append(chunk({}, "stop"))
    if with_usage:
        out.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": USAGE}) + b"\n\n")
    return out
