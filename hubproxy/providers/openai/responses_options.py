"""The options of a Responses request as chat request fields: sampling, limits, function
tools and tool_choice, text.format and reasoning.effort. Pure."""

from __future__ import annotations

from hubproxy.errors import BadRequest
from hubproxy.providers.base import JSON
from hubproxy.providers.openai.chat import bad, integer, number

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def options(body: JSON, out: JSON) -> None:
    """Every option of `body` (a Responses request) onto `out` (the chat request)."""
    limit = integer(body, "max_output_tokens")
    if limit is not None:
        out["max_completion_tokens"] = limit
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            out[key] = value
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise bad("'parallel_tool_calls' must be a boolean.", "parallel_tool_calls")
        out["parallel_tool_calls"] = parallel
    user = body.get("user", body.get("safety_identifier"))
    if isinstance(user, str) and user:
        out["user"] = user
    _tools(body, out)
    _text_format(body, out)
    _reasoning(body, out)
    for key in ("metadata", "store"):  # kept by the hub, not sent upstream
        _check_option(body, key)
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}


def _check_option(body: JSON, key: str) -> None:
    value = body.get(key)
    if value is None:
        return
    if key == "store" and not isinstance(value, bool):
        raise bad("'store' must be a boolean.", "store")
    if key == "metadata" and (
        not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
    ):
        raise bad("'metadata' must be an object of strings.", "metadata")


def _hosted(kind: str, at: str) -> BadRequest:
    return bad(
        f"{at}: the tool type {kind!r} runs only on OpenAI; this model supports function tools.",
        f"{at}.type",
        "unsupported_value",
    )


def _tools(body: JSON, out: JSON) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("'tools' must be a list.", "tools")
        functions = []
        for i, tool in enumerate(tools):
            at = f"tools[{i}]"
            kind = tool.get("type") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or not isinstance(kind, str):
                raise bad(f"{at} must be an object with a string 'type'.", f"{at}.type")
            if kind != "function":
                raise _hosted(kind, at)
            name, params, desc = tool.get("name"), tool.get("parameters"), tool.get("description")
            if not isinstance(name, str) or not name:
                raise bad(f"{at}.name must be a non-empty string.", f"{at}.name")
            if params is not None and not isinstance(params, dict):
                raise bad(f"{at}.parameters must be an object.", f"{at}.parameters")
            if desc is not None and not isinstance(desc, str):
                raise bad(f"{at}.description must be a string.", f"{at}.description")
            fn: JSON = {"name": name, "parameters": params or {"type": "object", "properties": {}}}
            if desc is not None:
                fn["description"] = desc
            if isinstance(tool.get("strict"), bool):
                fn["strict"] = tool["strict"]
            functions.append({"type": "function", "function": fn})
        if functions:
            out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    if choice in ("auto", "required", "none"):
        out["tool_choice"] = choice
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function" and isinstance(choice, dict):
        name = choice.get("name")
        if isinstance(name, str) and name:
            out["tool_choice"] = {"type": "function", "function": {"name": name}}
            return
    if isinstance(kind, str) and kind != "function":
        raise _hosted(kind, "tool_choice")
    raise bad(
        '\'tool_choice\' must be "auto", "required", "none" or {"type": "function", "name": ...}.',
        "tool_choice",
    )


def _text_format(body: JSON, out: JSON) -> None:
    text = body.get("text")
    if text is None:
        return
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(text, dict) or (fmt is not None and not isinstance(fmt, dict)):
        raise bad("'text.format' must be an object.", "text.format")
    kind = fmt.get("type") if fmt is not None else "text"
    if kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema" or fmt is None:
        raise bad(
            "'text.format.type' must be text, json_object or json_schema.", "text.format.type"
        )
    name, schema = fmt.get("name"), fmt.get("schema")
    if not isinstance(name, str) or not name:
        raise bad("'text.format.name' must be a non-empty string.", "text.format.name")
    if not isinstance(schema, dict):
        raise bad("'text.format.schema' must be an object.", "text.format.schema")
    spec: JSON = {"name": name, "schema": schema}
    for key in ("description", "strict"):
        if fmt.get(key) is not None:
            spec[key] = fmt[key]
    out["response_format"] = {"type": "json_schema", "json_schema": spec}


def _reasoning(body: JSON, out: JSON) -> None:
    reasoning = body.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise bad("'reasoning' must be an object.", "reasoning")
    effort = reasoning.get("effort")
    if effort is None:
        return
    if effort not in EFFORTS:
        raise bad(f"'reasoning.effort' must be one of {', '.join(EFFORTS)}.", "reasoning.effort")
    out["reasoning_effort"] = effort
