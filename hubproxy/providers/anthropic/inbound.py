"""The /v1/messages adapter: Anthropic-format clients in front of any upstream. Pure.

The hub's own format is OpenAI's, so an Anthropic request is turned into an OpenAI one, sent
through whichever provider the route names, and the OpenAI-shaped answer (whole, or the
chunks the provider's translator writes) is turned back into Anthropic's. What has no
counterpart is dropped where it is only a hint (top_k, thinking, cache_control) and refused
with a BadRequest where dropping it would change the answer (server tools, image tool results).
"""

from __future__ import annotations

from typing import Any

import orjson

from hubproxy.errors import HubError, UpstreamError
from hubproxy.providers.anthropic.inbound_stream import (
    STOP_BY_FINISH,
    MessagesStreamFromOpenAI,
    anthropic_usage,
    message_id,
)
from hubproxy.providers.base import JSON
from hubproxy.providers.openai.chat import bad, number, unsupported
from hubproxy.providers.openai.provider import loads, usage_of
from hubproxy.providers.sse import encode

__all__ = [
    "MessagesStreamFromOpenAI",
    "anthropic_error_body",
    "anthropic_error_event",
    "messages_reply_from_openai",
    "openai_request_from_messages",
]

NAME = "OpenAI"  # what an Anthropic request is translated into

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error_body(err: HubError) -> bytes:
    """A HubError in Anthropic's shape, for Anthropic-format clients."""
    kind = TYPE_BY_STATUS.get(err.status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": err.message}})


def anthropic_error_event(err: HubError) -> bytes:
    """The same error as an SSE `error` event, for a stream that has already begun."""
    return encode(anthropic_error_body(err), "error")


def openai_request_from_messages(body: JSON) -> JSON:
    """An Anthropic Messages request → the equivalent OpenAI chat request."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' must be a non-empty string.", "model")
    limit = body.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise bad("'max_tokens' is required and must be a non-negative integer.", "max_tokens")
    out: JSON = {"model": model, "messages": _messages(body), "max_tokens": limit}
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise bad("'stop_sequences' must be a list of strings.", "stop_sequences")
        out["stop"] = stop
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            out[key] = value
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    _tools(body, out)
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _messages(body: JSON) -> list[JSON]:
    out: list[JSON] = []
    system = body.get("system")
    if isinstance(system, str):
        if system:
            out.append({"role": "system", "content": system})
    elif isinstance(system, list):
        texts = [_text(block, f"system[{j}]") for j, block in enumerate(system)]
        out.append({"role": "system", "content": "\n\n".join(texts)})
    elif system is not None:
        raise bad("'system' must be a string or a list of text blocks.", "system")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty list.", "messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise bad(f'{where}.role must be "user" or "assistant".', f"{where}.role")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif not isinstance(content, list):
            raise bad(f"{where}.content must be a string or a list of blocks.", f"{where}.content")
        elif role == "user":
            out.extend(_user(content, f"{where}.content"))
        else:
            out.extend(_assistant(content, f"{where}.content"))
    return out


def _block(block: Any, where: str) -> tuple[str, JSON]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise bad(f"{where} must be an object with a string 'type'.", where)
    return block["type"], block


def _text(block: Any, where: str) -> str:
    kind, block = _block(block, where)
    if kind != "text" or not isinstance(block.get("text"), str):
        raise bad(f"{where} must be a text block.", where)
    text: str = block["text"]
    return text


def _image(block: JSON, where: str) -> JSON:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media, data = source.get("media_type"), source.get("data")
        if isinstance(media, str) and isinstance(data, str):
            return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise bad(f"{where}.source must be a base64 or url image source.", f"{where}.source")


def _document(block: JSON, where: str) -> JSON:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        media, data = source.get("media_type"), source.get("data")
        if isinstance(media, str) and isinstance(data, str):
            return {"type": "file", "file": {"file_data": f"data:{media};base64,{data}"}}
    raise unsupported("A document that is not base64 data", where, NAME)


def _user(content: list[Any], where: str) -> list[JSON]:
    tools: list[JSON] = []
    parts: list[JSON] = []
    for j, raw in enumerate(content):
        at = f"{where}[{j}]"
        kind, block = _block(raw, at)
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, at)})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "document":
            parts.append(_document(block, at))
        elif kind == "tool_result":
            tools.append(_tool_result(block, at))
        else:
            raise unsupported(f"The content block type {kind!r}", at, NAME)
    # OpenAI wants each tool message right after the assistant's calls, before new user text.
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tools, {"role": "user", "content": parts[0]["text"]}]
    return [*tools, {"role": "user", "content": parts}] if parts else tools


def _tool_result(block: JSON, where: str) -> JSON:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad(f"{where}.tool_use_id must be a string.", f"{where}.tool_use_id")
    content = block.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        for j, item in enumerate(content):
            if _block(item, f"{where}.content[{j}]")[0] != "text":
                raise unsupported("A tool result that is not text", f"{where}.content[{j}]", NAME)
        text = "".join(_text(item, f"{where}.content[{j}]") for j, item in enumerate(content))
    else:
        raise bad(f"{where}.content must be a string or a list of blocks.", f"{where}.content")
    if block.get("is_error") is True:
        text = f"Error: {text}"  # OpenAI tool messages have no error flag
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _assistant(content: list[Any], where: str) -> list[JSON]:
    texts: list[str] = []
    calls: list[JSON] = []
    for j, raw in enumerate(content):
        at = f"{where}[{j}]"
        kind, block = _block(raw, at)
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            cid, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if (
                not isinstance(cid, str)
                or not isinstance(name, str)
                or not isinstance(arguments, dict)
            ):
                raise bad(f"{at} needs a string id and name and an object input.", at)
            arguments_json = orjson.dumps(arguments).decode()
            function = {"name": name, "arguments": arguments_json}
            calls.append({"id": cid, "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):  # signed for Anthropic only: dropped
            raise unsupported(f"The content block type {kind!r}", at, NAME)
    if not texts and not calls:
        return []
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _tools(body: JSON, out: JSON) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("'tools' must be a list.", "tools")
        functions = []
        for i, tool in enumerate(tools):
            at = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type", "custom") not in ("custom", None):
                raise unsupported(f"{at} (server tools)", at, NAME)
            name, schema, desc = tool.get("name"), tool.get("input_schema"), tool.get("description")
            if not isinstance(name, str) or not isinstance(schema, dict):
                raise bad(f"{at} needs a string name and an object input_schema.", at)
            fn: JSON = {"name": name, "parameters": schema}
            if isinstance(desc, str):
                fn["description"] = desc
            functions.append({"type": "function", "function": fn})
        out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "any", "none"):
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    elif kind == "tool" and isinstance(choice, dict) and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise bad("'tool_choice.type' must be auto, any, tool or none.", "tool_choice")
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _tool_input(arguments: Any) -> JSON:
    """A tool call's arguments as Anthropic's object. Text that is not a JSON object (a model
    cut off mid-call) is kept whole under "_raw" rather than lost."""
    if not isinstance(arguments, str) or not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def messages_reply_from_openai(openai_json_bytes: bytes, model: str) -> bytes:
    """An OpenAI chat.completion → an Anthropic message."""
    obj = loads(openai_json_bytes, "JSON")
    choices = obj.get("choices") if isinstance(obj, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        raise UpstreamError("The upstream answer has no choices.", code="bad_upstream_response")
    content: list[JSON] = []
    reasoning, text = message.get("reasoning_content"), message.get("content")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    calls = [
        {
            "type": "tool_use",
            "id": call.get("id") or f"toolu_{i}",
            "name": call["function"].get("name") or "",
            "input": _tool_input(call["function"].get("arguments")),
        }
        for i, call in enumerate(message.get("tool_calls") or ())
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]
    if isinstance(text, str) and (text or not calls):
        content.append({"type": "text", "text": text})
    content += calls
    finish = choice.get("finish_reason")
    reply = {
        "id": message_id(obj.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_BY_FINISH.get(finish, "end_turn")
        if isinstance(finish, str)
        else "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(usage_of(obj.get("usage"))),
    }
    return orjson.dumps(reply)
