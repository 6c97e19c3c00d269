"""A fake upstream: OpenAI chat completions and Anthropic messages, plain and streamed.

Run as `python -m bench.upstream --port P [--chunks 20] [--delay-ms 0]`. A streamed answer at
POST /v1/chat/completions is `--chunks` chat.completion.chunk events (a role chunk, content
chunks, a finish chunk), each sent with its own write; with stream_options.include_usage every
chunk carries "usage":null and a usage-only chunk (choices: []) comes before `data: [DONE]`.
POST /v1/messages answers in Anthropic's Messages format with the same words (see
bench/anthropic_upstream.py), and wants an x-api-key header.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import orjson
from aiohttp import web

from bench import anthropic_upstream
from bench.server import serve

CHUNKS = web.AppKey("chunks", int)
DELAY_S = web.AppKey("delay_s", float)
FINGERPRINT = "fp_0ba0d124f1"
DONE = b"data: [DONE]\n\n"
_WORDS = (
    "Hello", "!", " I", "'m", " doing", " well", ",", " thank", " you", " for", " asking",
    ".", " How", " can", " I", " help", " you", " today", "?",
)  # fmt: skip


def words(n: int) -> list[str]:
    return [_WORDS[i % len(_WORDS)] for i in range(max(n, 0))]


def usage(body: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or ())
    prompt_tokens = 8 + chars // 4
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion(body: dict[str, Any], n_words: int) -> dict[str, Any]:
    text = words(n_words)
    return {
        "id": "chatcmpl-" + os.urandom(15).hex(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "".join(text),
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage(body, len(text)),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def chunks(body: dict[str, Any], n: int) -> list[bytes]:
    """The stream's events: n chunks, then (if asked) the usage chunk, then [DONE]."""
    opts = body.get("stream_options")
    with_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    head = {
        "id": "chatcmpl-" + os.urandom(15).hex(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    content = words(n - 2)
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "content": "", "refusal": None}, None),
        *(({"content": w}, None) for w in content),
        ({}, "stop"),
    ]
    out = []
    for delta, finish in deltas[:n]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk: dict[str, Any] = {**head, "choices": [choice]}
        if with_usage:
            chunk["usage"] = None
        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    if with_usage:
        final = {**head, "choices": [], "usage": usage(body, len(content))}
        out.append(b"data: " + orjson.dumps(final) + b"\n\n")
    out.append(DONE)
    return out


async def chat(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    n = request.app[CHUNKS]
    if body.get("stream") is not True:
        reply = orjson.dumps(completion(body, n - 2))
        return web.Response(body=reply, content_type="application/json")
    return await _stream(request, chunks(body, n))


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic's Messages API: the same answer as chat() in Anthropic's format."""
    if not request.headers.get("x-api-key"):
        reply = anthropic_upstream.error("authentication_error", "x-api-key header is required")
        return web.Response(status=401, body=reply, content_type="application/json")
    body = orjson.loads(await request.read())
    text = words(request.app[CHUNKS] - 2)
    if body.get("stream") is not True:
        reply = orjson.dumps(anthropic_upstream.message(body, text))
        return web.Response(body=reply, content_type="application/json")
    return await _stream(request, anthropic_upstream.events(body, text))


async def _stream(request: web.Request, events: list[bytes]) -> web.StreamResponse:
    """Each event with its own write, --delay-ms apart."""
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    delay = request.app[DELAY_S]
    for i, event in enumerate(events):
        if delay and i:
            await asyncio.sleep(delay)
        await resp.write(event)
    await resp.write_eof()
    return resp


def app(n_chunks: int = 20, delay_ms: float = 0.0) -> web.Application:
    application = web.Application()
    application[CHUNKS] = n_chunks
    application[DELAY_S] = delay_ms / 1000
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_post("/v1/messages", messages)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20, help="chunks per stream (min 2)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="pause between chunks")
    args = parser.parse_args()
    serve(app(max(args.chunks, 2), args.delay_ms), args.port)


if __name__ == "__main__":
    main()
