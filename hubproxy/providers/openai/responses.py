"""OpenAI's Responses API (/v1/responses) onto the hub's chat format: the request side. Pure.

A Responses request (`input` items, `instructions`, function `tools`, `text.format`, ...) is
turned into the equivalent chat completions request, with the stored earlier turns
(`history`, resolved from `previous_response_id` by the face) placed before the new input.
Anything that would change the answer if dropped (hosted tools, unknown item types, file ids
the hub cannot fetch) is a BadRequest naming the field; reasoning items of earlier turns are
only hints for the model that wrote them and are dropped.

The request's options (tools, text.format, reasoning ...) are read by responses_options. The
answer side lives in responses_object (whole answers), responses_stream (chat chunks as
Responses events) and responses_passthrough (an OpenAI upstream's own Responses stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hubproxy.providers.base import JSON
from hubproxy.providers.openai.chat import bad
from hubproxy.providers.openai.responses_object import response_from_chat, response_id
from hubproxy.providers.openai.responses_options import options
from hubproxy.providers.openai.responses_passthrough import (
    ResponsesPassthrough,
    continued,
    usage_of_response,
)
from hubproxy.providers.openai.responses_stream import ResponsesStreamFromChat

__all__ = [
    "ResponsesPassthrough",
    "ResponsesStreamFromChat",
    "chat_request_from_responses",
    "continued",
    "input_items",
    "response_from_chat",
    "response_id",
    "usage_of_response",
    "with_history",
]

ROLES = ("user", "assistant", "system", "developer")
# Item types of earlier turns that only the model which wrote them can use.
_HINTS = ("reasoning",)


def input_items(body: JSON) -> list[JSON]:
    """The request's `input` as a list of items (a string is one user message): what is
    stored as the turn's input, and what `chat_request_from_responses` reads."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    raw = body.get("input")
    if isinstance(raw, str):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}
        ]
    if not isinstance(raw, list):
        raise bad("'input' must be a string or a list of items.", "input")
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise bad(f"input[{i}] must be an object.", f"input[{i}]")
    return list(raw)


def with_history(body: JSON, history: Sequence[JSON]) -> JSON:
    """For a Responses upstream (pass-through): the request with the stored earlier turns put
    into `input` and `previous_response_id` removed, since that id is the hub's, not the
    upstream's."""
    out = {k: v for k, v in body.items() if k != "previous_response_id"}
    out["input"] = [*history, *input_items(body)]
    return out


def chat_request_from_responses(body: JSON, history: Sequence[JSON] = ()) -> JSON:
    """A Responses request (and the items of its earlier turns) → an OpenAI chat request."""
    items = input_items(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' must be a non-empty string.", "model")
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            messages.append({"role": "system", "content": instructions})
    elif instructions is not None:
        raise bad("'instructions' must be a string.", "instructions")
    _Items(messages).extend(history, "previous_response_id").extend(items, "input")
    if not messages:
        raise bad("'input' must hold at least one item.", "input")
    out: JSON = {"model": model, "messages": messages}
    options(body, out)
    return out


class _Items:
    """Appends Responses items to a chat message list: consecutive assistant text and
    function calls become one assistant message with tool_calls, as chat wants them."""

    __slots__ = ("_open", "_out")

    def __init__(self, out: list[JSON]) -> None:
        self._out = out
        self._open: JSON | None = None  # the assistant message that later calls join

    def extend(self, items: Sequence[Any], where: str) -> _Items:
        for i, item in enumerate(items):
            at = f"{where}[{i}]"
            if not isinstance(item, dict):
                raise bad(f"{at} must be an object.", at)
            kind = item.get("type", "message")  # EasyInputMessage may omit the type
            if kind == "message":
                self._message(item, at)
            elif kind == "function_call":
                self._call(item, at)
            elif kind == "function_call_output":
                self._open = None
                self._out.append(_tool_output(item, at))
            elif kind in _HINTS:
                continue
            elif isinstance(kind, str):
                raise bad(
                    f"{at}.type {kind!r} is not a supported input item type "
                    "(message, function_call, function_call_output).",
                    f"{at}.type",
                    "unsupported_value",
                )
            else:
                raise bad(f"{at}.type must be a string.", f"{at}.type")
        return self

    def _assistant(self) -> JSON:
        if self._open is None:
            self._open = {"role": "assistant", "content": None}
            self._out.append(self._open)
        return self._open

    def _message(self, item: JSON, at: str) -> None:
        role = item.get("role")
        if role not in ROLES:
            raise bad(f"{at}.role must be one of {', '.join(ROLES)}.", f"{at}.role")
        content = item.get("content")
        if role == "assistant":
            text = _assistant_text(content, f"{at}.content")
            message = self._assistant()
            if message.get("tool_calls"):  # text after calls starts a new message
                self._open = None
                message = self._assistant()
            message["content"] = (message["content"] or "") + text
            return
        self._open = None
        self._out.append({"role": role, "content": _user_content(content, f"{at}.content")})

    def _call(self, item: JSON, at: str) -> None:
        call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
        if not isinstance(call_id, str) or not call_id:
            raise bad(f"{at}.call_id must be a non-empty string.", f"{at}.call_id")
        if not isinstance(name, str) or not name:
            raise bad(f"{at}.name must be a non-empty string.", f"{at}.name")
        if not isinstance(arguments, str):
            raise bad(f"{at}.arguments must be a JSON string.", f"{at}.arguments")
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        self._assistant().setdefault("tool_calls", []).append(call)


def _parts(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise bad(f"{where} must be a string or a list of content parts.", where)
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad(f"{where}[{j}] must be an object with a string 'type'.", f"{where}[{j}]")
    return content


def _text(part: JSON, at: str, key: str = "text") -> str:
    text = part.get(key)
    if not isinstance(text, str):
        raise bad(f"{at}.{key} must be a string.", f"{at}.{key}")
    return text


def _assistant_text(content: Any, where: str) -> str:
    out = []
    for j, part in enumerate(_parts(content, where)):
        at, kind = f"{where}[{j}]", part["type"]
        if kind in ("output_text", "input_text", "text"):
            out.append(_text(part, at))
        elif kind == "refusal":
            out.append(_text(part, at, "refusal"))
        else:
            raise bad(f"{at}.type {kind!r} is not allowed in an assistant message.", f"{at}.type")
    return "".join(out)


def _user_content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    parts: list[JSON] = []
    for j, part in enumerate(_parts(content, where)):
        at, kind = f"{where}[{j}]", part["type"]
        if kind in ("input_text", "text", "output_text"):
            parts.append({"type": "text", "text": _text(part, at)})
        elif kind == "input_image":
            parts.append(_image(part, at))
        elif kind == "input_file":
            parts.append(_file(part, at))
        else:
            raise bad(f"{at}.type {kind!r} is not a supported content part.", f"{at}.type")
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _image(part: JSON, at: str) -> JSON:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        if part.get("file_id") is not None:
            raise bad(f"{at}.file_id: uploaded files are not available here.", f"{at}.file_id")
        raise bad(f"{at}.image_url must be a URL or a data URL.", f"{at}.image_url")
    ref: JSON = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if detail not in ("auto", "low", "high", "original"):
            raise bad(f"{at}.detail must be auto, low or high.", f"{at}.detail")
        ref["detail"] = detail
    return {"type": "image_url", "image_url": ref}


def _file(part: JSON, at: str) -> JSON:
    data = part.get("file_data")
    if not isinstance(data, str) or not data:
        raise bad(f"{at}: only file_data (a data URL) is supported.", f"{at}.file_data")
    file: JSON = {"file_data": data}
    if isinstance(part.get("filename"), str):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _tool_output(item: JSON, at: str) -> JSON:
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str) or not call_id:
        raise bad(f"{at}.call_id must be a non-empty string.", f"{at}.call_id")
    if isinstance(output, list):
        texts = []
        for j, part in enumerate(_parts(output, f"{at}.output")):
            if part["type"] not in ("input_text", "output_text", "text"):
                raise bad(
                    f"{at}.output[{j}]: only text is supported in a function call output.",
                    f"{at}.output[{j}].type",
                )
            texts.append(_text(part, f"{at}.output[{j}]"))
        output = "".join(texts)
    if not isinstance(output, str):
        raise bad(f"{at}.output must be a string or a list of text parts.", f"{at}.output")
    return {"role": "tool", "tool_call_id": call_id, "content": output}
