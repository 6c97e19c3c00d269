"""OpenAI chat request → Anthropic Messages request body. Pure; bad input is a BadRequest.

Anthropic wants the system prompt apart, strictly alternating user/assistant turns, tool
results as user-role `tool_result` blocks (first in their turn) and a `max_tokens`.
"""

from __future__ import annotations

from typing import Any

import orjson

from hubproxy.providers.base import JSON
from hubproxy.providers.openai.chat import (
    bad,
    check_single_choice,
    data_url,
    function_tools,
    image_url,
    is_web_url,
    max_tokens,
    messages_of,
    number,
    parts_of,
    plain_text,
    response_format,
    stop_sequences,
    text_of_part,
    tool_calls_of,
    tool_choice,
    unsupported,
)

NAME = "Anthropic"
DEFAULT_MAX_TOKENS = 4096

# Anthropic has no JSON mode flag: the closest faithful translation of response_format is an
# instruction appended to the system prompt. It steers the model but does not guarantee
# valid JSON, which is also what OpenAI promises for json_object without a schema.
JSON_ONLY = "Respond only with a single valid JSON object: no prose, no Markdown code fences."
JSON_SCHEMA = (
    "Respond only with a single valid JSON object that conforms to this JSON Schema, with no "
    "prose and no Markdown code fences:\n"
)


def messages_body(body: JSON, model: str, stream: bool) -> JSON:
    """The Anthropic request for an OpenAI chat request (which is not modified)."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    check_single_choice(body, NAME)
    for key in ("audio", "prediction"):
        if body.get(key) is not None:
            raise unsupported(f"'{key}'", key, NAME)
    if body.get("logprobs") or body.get("top_logprobs"):
        raise unsupported("'logprobs'", "logprobs", NAME)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise unsupported("Output modalities other than text", "modalities", NAME)
    system, turns = _conversation(body)
    kind, schema = response_format(body)
    if kind == "json_object":
        system.append({"type": "text", "text": JSON_ONLY})
    elif kind == "json_schema":
        system.append({"type": "text", "text": JSON_SCHEMA + orjson.dumps(schema).decode()})
    limit = max_tokens(body)
    out: JSON = {
        "model": model,
        "max_tokens": limit if limit else DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system:
        plain = len(system) == 1 and set(system[0]) == {"type", "text"}
        out["system"] = system[0]["text"] if plain else system
    stop = stop_sequences(body)
    if stop:
        out["stop_sequences"] = stop
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            out[key] = value
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    _tools(body, out)
    if stream:
        out["stream"] = True
    return out


def _tools(body: JSON, out: JSON) -> None:
    tools = function_tools(body, NAME)
    choice = tool_choice(body)
    parallel = body.get("parallel_tool_calls")
    if not tools:
        return  # Anthropic rejects a tool_choice without tools; without tools it is moot
    out["tools"] = [
        {
            "name": name,
            **({"description": desc} if desc else {}),
            "input_schema": params or {"type": "object", "properties": {}},
        }
        for name, desc, params in tools
    ]
    kind, name = choice or ("auto", None)
    spec: JSON = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
    }.get(kind, {"type": "tool", "name": name})
    if parallel is False and kind != "none":
        spec["disable_parallel_tool_use"] = True
    if choice is not None or parallel is False:
        out["tool_choice"] = spec


def _conversation(body: JSON) -> tuple[list[JSON], list[JSON]]:
    """(system text blocks, alternating turns)."""
    system: list[JSON] = []
    turns: list[JSON] = []
    for i, message in enumerate(messages_of(body)):
        where = f"messages[{i}]"
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
            role = "assistant"
        elif role == "tool":
            blocks, role = [_tool_result(message, where)], "user"
        else:
            raise bad(f"{where}.role {role!r} is not supported.", f"{where}.role")
        if not blocks:
            continue  # an empty message (e.g. content ""), which Anthropic would refuse
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic requires alternating roles
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise bad("At least one user or assistant message is required.", "messages")
    for turn in turns:
        if turn["role"] == "user":  # tool results must lead their turn
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, turns


def _text_block(part: JSON, where: str) -> JSON | None:
    text = text_of_part(part, where)
    if not text:
        return None
    block: JSON = {"type": "text", "text": text}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]  # prompt caching, as some clients send it
    return block


def _text_blocks(content: Any, where: str) -> list[JSON]:
    blocks = []
    for j, part in enumerate(parts_of(content, where)):
        if part["type"] != "text":
            raise bad(f"{where}[{j}]: only text parts are allowed here.", f"{where}[{j}]")
        block = _text_block(part, f"{where}[{j}]")
        if block:
            blocks.append(block)
    return blocks


def _user_blocks(content: Any, where: str) -> list[JSON]:
    blocks: list[JSON] = []
    for j, part in enumerate(parts_of(content, where)):
        at, kind = f"{where}[{j}]", part["type"]
        if kind == "text":
            block = _text_block(part, at)
            if block:
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(_image(part, at))
        elif kind == "file":
            blocks.append(_document(part, at))
        else:
            raise unsupported(f"The content part type {kind!r}", at, NAME)
    return blocks


def _image(part: JSON, where: str) -> JSON:
    url = image_url(part, where)
    if url.startswith("data:"):
        media_type, data = data_url(url, f"{where}.image_url.url")
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif is_web_url(url):
        source = {"type": "url", "url": url}
    else:
        raise bad(f"{where}.image_url.url must be an https or a data URL.", where)
    return {"type": "image", "source": source}


def _document(part: JSON, where: str) -> JSON:
    ref = part.get("file")
    file_data = ref.get("file_data") if isinstance(ref, dict) else None
    if not isinstance(file_data, str):
        raise unsupported("A file part without inline file_data", where, NAME)
    media_type, data = data_url(file_data, f"{where}.file.file_data")
    if media_type != "application/pdf":
        raise unsupported(f"A file of type {media_type!r}", where, NAME)
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _assistant_blocks(message: JSON, where: str) -> list[JSON]:
    blocks: list[JSON] = []
    for j, part in enumerate(parts_of(message.get("content"), f"{where}.content")):
        at = f"{where}.content[{j}]"
        if part["type"] not in ("text", "refusal"):
            raise unsupported(f"The assistant content part type {part['type']!r}", at, NAME)
        block = _text_block(part, at)
        if block:
            blocks.append(block)
    for call_id, name, arguments in tool_calls_of(message, where):
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
    return blocks


def _tool_result(message: JSON, where: str) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad(f"{where}.tool_call_id must be a string.", f"{where}.tool_call_id")
    result: JSON = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, list) and any(
        isinstance(p, dict) and p.get("type") == "image_url" for p in content
    ):
        result["content"] = _user_blocks(content, f"{where}.content")
    else:
        text = plain_text(content, f"{where}.content")
        if text:
            result["content"] = text
    return result
