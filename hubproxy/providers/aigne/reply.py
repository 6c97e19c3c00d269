"""AIGNE v2 replies from the hub's OpenAI chat completion: /api/v2/chat's {text, thoughts, json,
toolCalls, model, usage}, /api/v2/chat/completions' {role, text, content, toolCalls}, and
AIGNE's error object. Pure.

`aigneHubCredits` is the call's debit in credits, as a JSON number (AIGNE's SDK refuses a
string). The hub keeps money in integer micro-credits; the number is written from the exact
decimal text (at most 15 significant digits below a billion credits, so a double holds it
exactly and prints it back the same).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from hubproxy import money
from hubproxy.errors import HubError
from hubproxy.providers.base import JSON, Usage
from hubproxy.providers.openai.provider import loads, usage_of


def credits_number(micro: int) -> float:
    """Micro-credits as AIGNE's decimal number of credits: 1500 → 0.0015."""
    return float(Decimal(money.format_amount(micro)))


def aigne_usage(
    usage: Usage | None,
    *,
    debit: int | None,
    credit_prefix: str | None = None,
    call_id: str | None = None,
) -> JSON:
    """AIGNE's usage object. `debit` (micro-credits) is left out when not known."""
    u = usage or Usage()
    out: JSON = {"inputTokens": u.prompt_tokens, "outputTokens": u.completion_tokens}
    if u.cache_creation_tokens:
        out["cacheCreationInputTokens"] = u.cache_creation_tokens
    if u.cached_tokens:
        out["cacheReadInputTokens"] = u.cached_tokens
    if call_id is not None:
        out["modelCallId"] = call_id
    if debit is not None:
        out["aigneHubCredits"] = credits_number(debit)
    if credit_prefix is not None:
        out["creditPrefix"] = credit_prefix
    return out


def tool_calls(calls: Any) -> list[JSON]:
    """OpenAI tool calls (arguments as JSON text) → AIGNE's (arguments as an object)."""
    out = []
    for call in calls if isinstance(calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        out.append({"id": call.get("id") or "", "type": "function",
                    "function": {"name": fn.get("name") or "", "arguments": parse_arguments(
                        fn.get("arguments"))}})  # fmt: skip
    return out


def parse_arguments(text: Any) -> Any:
    """A tool call's JSON text as its value; text that is not JSON stays text."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def chat_reply(
    completion: bytes,
    *,
    model: str,
    debit: int | None,
    json_mode: bool = False,
    credit_prefix: str | None = None,
    call_id: str | None = None,
) -> bytes:
    """The /api/v2/chat reply for an OpenAI chat completion. `model` is the one the client
    asked for (provider/model); `debit` the call's settled micro-credits."""
    obj = loads(completion, "response")
    choices = obj.get("choices") if isinstance(obj, dict) else None
    message = choices[0].get("message") if isinstance(choices, list) and choices else None
    message = message if isinstance(message, dict) else {}
    out: JSON = {}
    text = message.get("content")
    if isinstance(text, str) and text:
        if json_mode:
            out["json"] = parse_arguments(text)
        else:
            out["text"] = text
    thoughts = message.get("reasoning_content")
    if isinstance(thoughts, str) and thoughts:
        out["thoughts"] = thoughts
    calls = tool_calls(message.get("tool_calls"))
    if calls:
        out["toolCalls"] = calls
    out["model"] = model
    out["usage"] = aigne_usage(
        usage_of(obj.get("usage") if isinstance(obj, dict) else None),
        debit=debit, credit_prefix=credit_prefix, call_id=call_id,
    )  # fmt: skip
    return orjson.dumps(out)


def completions_reply(completion: bytes) -> bytes:
    """The /api/v2/chat/completions reply: {role, text, content, toolCalls}, no usage (as AIGNE)."""
    obj = loads(completion, "response")
    choices = obj.get("choices") if isinstance(obj, dict) else None
    message = choices[0].get("message") if isinstance(choices, list) and choices else None
    message = message if isinstance(message, dict) else {}
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    out: JSON = {"role": "assistant", "text": text, "content": text}
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        out["toolCalls"] = [
            {"id": c.get("id"), "type": "function", "function": c.get("function")}
            for c in calls
            if isinstance(c, dict)
        ]
    return orjson.dumps(out)


def error_body(err: HubError, *, link: str | None = None, now: datetime | None = None) -> bytes:
    """AIGNE's error object for an answer that has not begun: {"error": {message, type,
    timestamp, link}}; 402 is type NOT_ENOUGH with the link to buy credits or subscribe."""
    kind = "NOT_ENOUGH" if err.status == 402 else (err.code or err.type)
    when = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    error: JSON = {"message": err.message, "type": kind, "timestamp": when}
    if link is not None:
        error["link"] = link
    return orjson.dumps({"error": error})
