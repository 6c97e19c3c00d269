"""OpenAI chat shapes for the translating providers: request checks, parts, chunks. Pure.

Anthropic and Gemini read an OpenAI request and write OpenAI answers. What they share lives
here: validation that turns any malformed input into a 4xx BadRequest (never a bare
exception), and the writers of chat.completion(.chunk) JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from hubproxy.errors import BadRequest
from hubproxy.providers.base import JSON, Usage

DONE = b"data: [DONE]\n\n"


def bad(message: str, param: str | None = None, code: str | None = None) -> BadRequest:
    return BadRequest(message, param=param, code=code)


def unsupported(what: str, param: str, provider: str) -> BadRequest:
    return bad(f"{what} is not supported by the {provider} format.", param, "unsupported_value")


def messages_of(body: Mapping[str, Any]) -> list[JSON]:
    """The message list, each a dict with a string role."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty list.", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise bad(f"messages[{i}] must be an object with a string 'role'.", f"messages[{i}]")
    return messages


def check_single_choice(body: Mapping[str, Any], provider: str) -> None:
    n = body.get("n")
    if n is None or (n == 1 and isinstance(n, int) and not isinstance(n, bool)):
        return
    raise unsupported("'n' other than 1", "n", provider)


def integer(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad(f"'{key}' must be a non-negative integer.", key)
    return value


def number(body: Mapping[str, Any], key: str) -> float | int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad(f"'{key}' must be a number.", key)
    return value


def max_tokens(body: Mapping[str, Any]) -> int | None:
    limit = integer(body, "max_completion_tokens")
    return limit if limit is not None else integer(body, "max_tokens")


def stop_sequences(body: Mapping[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise bad("'stop' must be a string or a list of strings.", "stop")


def parts_of(content: Any, where: str) -> list[JSON]:
    """Message content as a list of typed parts: a string is one text part, null none."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise bad(f"{where} must be a string or a list of content parts.", where)
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad(f"{where}[{j}] must be an object with a string 'type'.", f"{where}[{j}]")
    return content


def text_of_part(part: JSON, where: str) -> str:
    key = "refusal" if part["type"] == "refusal" else "text"
    text = part.get(key)
    if not isinstance(text, str):
        raise bad(f"{where}.{key} must be a string.", f"{where}.{key}")
    return text


def plain_text(content: Any, where: str) -> str:
    """The text of content that may only hold text (system prompts, tool results)."""
    out = []
    for j, part in enumerate(parts_of(content, where)):
        if part["type"] != "text":
            raise bad(f"{where}[{j}]: only text parts are allowed here.", f"{where}[{j}]")
        out.append(text_of_part(part, f"{where}[{j}]"))
    return "".join(out)


def image_url(part: JSON, where: str) -> str:
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url:
        raise bad(f"{where}.image_url.url must be a string.", f"{where}.image_url")
    return url


def data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    head, sep, data = url.partition(",")
    meta = head[5:].split(";") if head.startswith("data:") else []
    if not sep or "base64" not in meta[1:] or not meta[0] or not data:
        raise bad(f"{where}: expected a data:<media type>;base64,<data> URL.", where)
    return meta[0], data


def is_web_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def tool_arguments(arguments: Any, where: str) -> JSON:
    """A tool call's `arguments` JSON string as the object it encodes."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or arguments == "":
        return {}
    if not isinstance(arguments, str):
        raise bad(f"{where} must be a JSON string.", where)
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise bad(f"{where} is not valid JSON.", where) from None
    if not isinstance(value, dict):
        raise bad(f"{where} must encode a JSON object.", where)
    return value


def tool_calls_of(message: JSON, where: str) -> list[tuple[str, str, JSON]]:
    """(id, name, arguments object) of an assistant message's tool calls."""
    calls = message.get("tool_calls")
    if calls is None:
        if message.get("function_call") is not None:
            raise bad(f"{where}.function_call is deprecated: use tool_calls.", where)
        return []
    if not isinstance(calls, list):
        raise bad(f"{where}.tool_calls must be a list.", f"{where}.tool_calls")
    out = []
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or call.get("type", "function") != "function":
            raise bad(f"{at} must be a function tool call.", at)
        call_id, name = call.get("id"), fn.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str) or not name:
            raise bad(f"{at} needs a string 'id' and 'function.name'.", at)
        out.append((call_id, name, tool_arguments(fn.get("arguments"), f"{at}.function.arguments")))
    return out


def function_tools(body: Mapping[str, Any], provider: str) -> list[tuple[str, str | None, Any]]:
    """(name, description, parameters schema or None) of the request's function tools."""
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad("'tools' must be a list.", "tools")
    out = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise unsupported(f"tools[{i}] (only function tools)", f"tools[{i}]", provider)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad(f"tools[{i}].function needs a string 'name'.", f"tools[{i}].function")
        desc, params = fn.get("description"), fn.get("parameters")
        if desc is not None and not isinstance(desc, str):
            raise bad(f"tools[{i}].function.description must be a string.", f"tools[{i}]")
        if params is not None and not isinstance(params, dict):
            raise bad(f"tools[{i}].function.parameters must be an object.", f"tools[{i}]")
        out.append((fn["name"], desc, params))
    return out


def tool_choice(body: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """("auto" | "required" | "none", None) or ("function", name); None when absent."""
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        return choice, None
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
        return "function", fn["name"]
    raise bad(
        '\'tool_choice\' must be "auto", "required", "none" or '
        '{"type": "function", "function": {"name": ...}}.',
        "tool_choice",
    )


def response_format(body: Mapping[str, Any]) -> tuple[str, Any]:
    """("text" | "json_object" | "json_schema", schema or None)."""
    fmt = body.get("response_format")
    if fmt is None:
        return "text", None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return kind, None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad("response_format.json_schema.schema must be an object.", "response_format")
        return kind, schema
    raise bad("'response_format.type' must be text, json_object or json_schema.", "response_format")


def usage_json(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def tool_call_json(index: int | None, call_id: str, name: str, arguments: str) -> JSON:
    call: JSON = {"index": index} if index is not None else {}
    call.update(id=call_id, type="function", function={"name": name, "arguments": arguments})
    return call


def completion(
    cid: str,
    model: str,
    message: JSON,
    finish: str,
    usage: Usage | None,
    created: int | None = None,
) -> bytes:
    """A chat.completion object."""
    whole: JSON = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        whole["usage"] = usage_json(usage)
    return orjson.dumps(whole)


class ChunkWriter:
    """Writes chat.completion.chunk SSE events that share one id, model and creation time."""

    __slots__ = ("_head",)

    def __init__(self, cid: str, model: str, created: int | None = None) -> None:
        self._head: JSON = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()) if created is None else created,
            "model": model,
        }

    def chunk(self, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + orjson.dumps({**self._head, "choices": [choice]}) + b"\n\n"

    def usage_chunk(self, usage: Usage) -> bytes:
        obj = {**self._head, "choices": [], "usage": usage_json(usage)}
        return b"data: " + orjson.dumps(obj) + b"\n\n"
