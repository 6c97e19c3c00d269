"""AIGNE v2 requests → the hub's OpenAI chat body: /api/v2/chat (AIGNE-native) and
/api/v2/chat/completions (flat camelCase). Pure.

/api/v2/chat sends `input.messages` with roles system|user|agent|tool, an agent's `toolCalls`
with OBJECT arguments, a tool message's `toolCallId`, and `input.modelOptions`; the model is
`input.modelOptions.model`, else the top-level `model`, else the configured default; it
streams when `options.streaming` is true. /api/v2/chat/completions is OpenAI's shape in
camelCase with STRING tool arguments; the face decides streaming (by Accept).
"""

from __future__ import annotations

from typing import Any

import orjson

from hubproxy.providers.base import JSON
from hubproxy.providers.openai.chat import bad, tool_arguments

DEFAULT_MODEL = "openai/gpt-5-mini"
ROLES = {"system": "system", "user": "user", "agent": "assistant", "tool": "tool"}
FLAT_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
# modelOptions (and the flat body's fields) → OpenAI's names
OPTIONS = {"temperature": "temperature", "topP": "top_p", "frequencyPenalty": "frequency_penalty",
           "presencePenalty": "presence_penalty", "parallelToolCalls": "parallel_tool_calls",
           "reasoningEffort": "reasoning_effort", "maxTokens": "max_tokens"}  # fmt: skip


def chat_request(body: Any, default_model: str = DEFAULT_MODEL) -> tuple[JSON, bool]:
    """An /api/v2/chat body → (OpenAI chat body, whether the reply is structured JSON)."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    given = body.get("input")
    if not isinstance(given, dict):
        raise bad("'input' must be an object with 'messages'.", "input")
    options = given.get("modelOptions") or {}
    if not isinstance(options, dict):
        raise bad("'input.modelOptions' must be an object.", "input.modelOptions")
    out: JSON = {
        "model": _model(options.get("model") or body.get("model") or default_model),
        "messages": _messages(given.get("messages"), "input.messages", ROLES, object_args=True),
    }
    _options(options, out, "input.modelOptions")
    _tools(given, out, "input")
    json_mode = _response_format(given.get("responseFormat"), out, "input.responseFormat")
    run = body.get("options")
    if isinstance(run, dict) and run.get("streaming") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out, json_mode


def completions_request(body: Any, *, stream: bool, default_model: str = DEFAULT_MODEL) -> JSON:
    """An /api/v2/chat/completions body (flat camelCase) → an OpenAI chat body."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    messages = body.get("messages")
    if messages is None and isinstance(body.get("prompt"), str):
        messages = [{"role": "user", "content": body["prompt"]}]
    out: JSON = {
        "model": _model(body.get("model") or default_model),
        "messages": _messages(messages, "messages", FLAT_ROLES, object_args=False),
    }
    _options(body, out, "")
    _tools(body, out, "")
    _response_format(body.get("responseFormat"), out, "responseFormat")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise bad("'model' must be a non-empty string such as 'openai/gpt-4o'.", "model")
    return model.strip()


def _options(options: JSON, out: JSON, where: str) -> None:
    for name, openai_name in OPTIONS.items():
        value = options.get(name)
        if value is None:
            continue
        at = f"{where}.{name}" if where else name
        if name == "reasoningEffort":
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise bad(f"'{at}' must be a string or a number.", at)
        elif name == "parallelToolCalls":
            if not isinstance(value, bool):
                raise bad(f"'{at}' must be true or false.", at)
        elif name == "maxTokens":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(f"'{at}' must be a positive integer.", at)
        elif not isinstance(value, int | float) or isinstance(value, bool):
            raise bad(f"'{at}' must be a number.", at)
        out[openai_name] = value


def _messages(messages: Any, where: str, roles: dict[str, str], *, object_args: bool) -> list[JSON]:
    if not isinstance(messages, list) or not messages:
        raise bad(f"'{where}' must be a non-empty list.", where)
    out = []
    for i, message in enumerate(messages):
        at = f"{where}[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in roles:
            raise bad(f"{at}.role must be one of {', '.join(roles)}.", f"{at}.role")
        assert isinstance(message, dict)
        item: JSON = {"role": roles[role]}
        content = _content(message.get("content"), f"{at}.content", tool=role == "tool")
        if content is not None:
            item["content"] = content
        if role in ("agent", "assistant"):
            calls = _tool_calls(message.get("toolCalls"), f"{at}.toolCalls", object_args)
            if calls:
                item["tool_calls"] = calls
            item.setdefault("content", None)
        elif role == "tool":
            call_id = message.get("toolCallId")
            if not isinstance(call_id, str) or not call_id:
                raise bad(f"{at}.toolCallId must be a non-empty string.", f"{at}.toolCallId")
            item["tool_call_id"] = call_id
            item.setdefault("content", "")
        elif content is None:
            raise bad(f"{at}.content is required.", f"{at}.content")
        name = message.get("name")
        if isinstance(name, str) and name and role != "tool":
            item["name"] = name
        out.append(item)
    return out


def _content(content: Any, where: str, *, tool: bool) -> str | list[JSON] | None:
    if content is None or isinstance(content, str):
        return content
    if tool and isinstance(content, dict):
        return orjson.dumps(content).decode()  # a tool's result object goes as its JSON text
    if not isinstance(content, list):
        raise bad(f"{where} must be a string or a list of parts.", where)
    parts: list[JSON] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        assert kind is None or isinstance(part, dict)
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})  # cacheControl: a hint, dropped
        elif kind == "url" and isinstance(part.get("url"), str):
            _image_only(part, at)
            parts.append({"type": "image_url", "image_url": {"url": part["url"]}})
        elif kind == "file" and isinstance(part.get("data"), str):
            mime = _image_only(part, at) or "image/png"
            data = part["data"]
            url = data if data.startswith("data:") else f"data:{mime};base64,{data}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "local":
            raise bad(f"{at}: a local file cannot be read by the hub; send it as 'file'.", at)
        else:
            raise bad(f"{at} must be a text, url or file part.", at)
    return parts


def _image_only(part: JSON, where: str) -> str | None:
    mime = part.get("mimeType")
    if mime is not None and (not isinstance(mime, str) or not mime.startswith("image/")):
        raise bad(f"{where}: only images can be sent to a chat model (got {mime!r}).", where)
    return mime


def _tool_calls(calls: Any, where: str, object_args: bool) -> list[JSON]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise bad(f"{where} must be a list.", where)
    out = []
    for j, call in enumerate(calls):
        at = f"{where}[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(fn, dict):
            raise bad(f"{at} must be {{id, type: 'function', function: {{name, arguments}}}}.", at)
        call_id, name, args = call.get("id"), fn.get("name"), fn.get("arguments")
        if not isinstance(call_id, str) or not isinstance(name, str) or not name:
            raise bad(f"{at} needs a string 'id' and 'function.name'.", at)
        if object_args:
            if args is not None and not isinstance(args, dict):
                raise bad(f"{at}.function.arguments must be an object.", f"{at}.function")
            text = orjson.dumps(args or {}).decode()
        else:
            text = orjson.dumps(tool_arguments(args, f"{at}.function.arguments")).decode()
        out.append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}
        )
    return out


def _tools(body: JSON, out: JSON, where: str) -> None:
    tools, choice = body.get("tools"), body.get("toolChoice")
    at = f"{where}.tools" if where else "tools"
    if tools is not None:
        if not isinstance(tools, list):
            raise bad(f"'{at}' must be a list.", at)
        if tools:
            out["tools"] = tools  # the same {type: "function", function: {...}} shape
    if choice is None:
        return
    at = f"{where}.toolChoice" if where else "toolChoice"
    if choice in ("auto", "none", "required"):
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out["tool_choice"] = {
            "type": "function",
            "function": {"name": choice["function"].get("name")},
        }
    else:
        raise bad(f"'{at}' must be auto, none, required or a function tool.", at)


def _response_format(fmt: Any, out: JSON, where: str) -> bool:
    """Copy a JSON response format; True when the answer is to be read as JSON."""
    if fmt is None:
        return False
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return False
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return True
    if kind == "json_schema" and isinstance(fmt, dict):
        spec = fmt.get("jsonSchema", fmt.get("json_schema"))
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise bad(f"'{where}.jsonSchema.schema' must be an object.", where)
        schema: JSON = {"name": spec.get("name") or "output", "schema": spec["schema"]}
        if isinstance(spec.get("strict"), bool):
            schema["strict"] = spec["strict"]
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
        return True
    raise bad(f"'{where}.type' must be text, json_object or json_schema.", where)
