"""A fake OpenAI-compatible upstream that calls tools, for tool round trips through the hub.

POST /v1/chat/completions with `Authorization: Bearer KEY`. A request with tools whose last
message is not a tool result gets the constructed tool-call answer of tests/data/openai
(streamed: text and two calls, get_weather and get_time; whole: text and get_weather). The
next request must send the assistant's calls back as they were issued, followed by one tool
message per call; it gets the OpenAI fake's text answer. Anything else gets that text answer
too. A failed check is a 400 in OpenAI's error shape naming the problem. Answers are written
in small pieces (see wire.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_upstream import chunks, completion
from tests.fakes.wire import Recorder, data

KEY = "sk-tools-UPSTREAM-secret-key-0000001"
# (id, name, arguments as JSON) of the calls each captured answer makes.
STREAM_CALLS = [
    ("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", {"location": "東京"}),
    ("call_second0000000000000000", "get_time", {"tz": "Asia/Tokyo"}),
]
REPLY_CALLS = STREAM_CALLS[:1]


@dataclass
class FakeOpenAITools(Recorder):
    """State shared with the test: what arrived, what was sent, the tool messages seen."""

    key: str = KEY
    tool_messages: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        seen = await self.seen(request)
        if seen.header("authorization") != f"Bearer {self.key}":
            return await self.invalid(request, "Incorrect API key provided.", 401)
        body = seen.body
        messages = body["messages"]
        stream = body.get("stream") is True
        if messages[-1].get("role") == "tool":
            problem = self._check_round(messages)
            if problem:
                return await self.invalid(request, problem)
        elif body.get("tools"):
            if stream:
                raw = data("openai/stream_text_tools.sse")
                return await self.send(request, raw, content_type="text/event-stream")
            return await self.send(request, data("openai/completion_tool_call.json"))
        if not stream:
            return await self.send(request, orjson.dumps(completion(body)))
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True
        raw = b"".join(chunks(body, with_usage)) + b"data: [DONE]\n\n"
        return await self.send(request, raw, content_type="text/event-stream")

    def _check_round(self, messages: list[dict[str, Any]]) -> str | None:
        """The calls sent back as issued, then one tool message answering each."""
        n = len(messages)
        while n and messages[n - 1].get("role") == "tool":
            n -= 1
        results = messages[n:]
        self.tool_messages.extend(results)
        if n == 0 or messages[n - 1].get("role") != "assistant":
            return "messages with role 'tool' must be a response to a preceding 'tool_calls'"
        sent = [
            (c.get("id"), c["function"]["name"], orjson.loads(c["function"]["arguments"]))
            for c in messages[n - 1].get("tool_calls") or ()
        ]
        if sent not in (STREAM_CALLS, REPLY_CALLS):
            return f"the tool calls came back changed: {sent}"
        answered = sorted(str(m.get("tool_call_id")) for m in results)
        if answered != sorted(str(call[0]) for call in sent):
            return f"tool_call_ids {answered} do not answer the calls {[c[0] for c in sent]}"
        if not all(isinstance(m.get("content"), str) and m["content"] for m in results):
            return "each tool message needs its result as content"
        return None

    async def invalid(
        self, request: web.Request, message: str, status: int = 400
    ) -> web.StreamResponse:
        err = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        return await self.send(request, orjson.dumps({"error": err}), status=status)
