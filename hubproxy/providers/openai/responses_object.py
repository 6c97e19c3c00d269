"""The Response object of OpenAI's Responses API, written from chat completions. Pure.

Builds what a translated /v1/responses call answers: the response shell that echoes the
request's settings, the output items (`message` with `output_text` parts, `function_call`),
the status (`incomplete` when the answer was cut by the token limit) and the usage.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from hubproxy.errors import HubError, UpstreamError
from hubproxy.providers.base import JSON, Usage
from hubproxy.providers.openai.provider import loads, usage_of

# finish_reason → (status, incomplete_details.reason)
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# HubError status → Response.error.code (the codes the Responses API documents)
_ERROR_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt"}


def response_id() -> str:
    """A new response id, shaped like OpenAI's (resp_ and 48 hex digits)."""
    return f"resp_{secrets.token_hex(24)}"


def message_item_id(resp_id: str) -> str:
    return f"msg_{resp_id.removeprefix('resp_')}"


def call_item_id(resp_id: str, index: int) -> str:
    return f"fc_{resp_id.removeprefix('resp_')}_{index}"


def shell(request: JSON, *, resp_id: str, model: str, created_at: int) -> JSON:
    """A Response in progress, echoing the request's settings as OpenAI does."""
    reasoning = request.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    parallel = request.get("parallel_tool_calls")
    store = request.get("store")
    text = request.get("text")
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": store if isinstance(store, bool) else True,
        "temperature": request.get("temperature"),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def usage_json(usage: Usage | None, reasoning_tokens: int = 0) -> JSON:
    """The Responses usage object. input_tokens counts every input token, the ones read from
    (cached_tokens) or written to (cache_write_tokens) the provider's prompt cache included.
    Without a count it is all zeros, for the gateway's estimate to fill in."""
    usage = usage or Usage()
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_creation_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def reasoning_tokens_of(usage: Any) -> int:
    """completion_tokens_details.reasoning_tokens of a chat usage object, or 0."""
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    count = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def text_part(text: str) -> JSON:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, parts: list[JSON], status: str) -> JSON:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": parts,
        "role": "assistant",
    }


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def finish(
    response: JSON, finish_reason: str | None, usage: Usage | None, reasoning_tokens: int = 0
) -> JSON:
    """`response` (with its output) given its final status and usage."""
    reason = _INCOMPLETE.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage_json(usage, reasoning_tokens)
    return response


def failed(response: JSON, err: HubError) -> JSON:
    """`response` as it stands, failed with `err` (message only: it was written for clients)."""
    code = _ERROR_CODES.get(err.status, "server_error")
    response["status"] = "failed"
    response["error"] = {"code": code, "message": err.message}
    return response


def response_from_chat(
    chat_completion_bytes: bytes, *, response_id: str, model: str, request: JSON
) -> bytes:
    """An OpenAI chat.completion → the Response object of a /v1/responses call."""
    obj = loads(chat_completion_bytes, "JSON")
    choices = obj.get("choices") if isinstance(obj, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(obj, dict) or not isinstance(choice, dict) or not isinstance(message, dict):
        raise UpstreamError("The upstream answer has no choices.", code="bad_upstream_response")
    created = obj.get("created")
    created_at = created if isinstance(created, int) else int(time.time())
    response = shell(request, resp_id=response_id, model=model, created_at=created_at)
    finish_reason = choice.get("finish_reason")
    finish_reason = finish_reason if isinstance(finish_reason, str) else None
    status = "incomplete" if finish_reason in _INCOMPLETE else "completed"
    output: list[JSON] = []
    text, refusal = message.get("content"), message.get("refusal")
    parts = [text_part(text)] if isinstance(text, str) and text else []
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    if parts:
        output.append(message_item(message_item_id(response_id), parts, status))
    for i, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(fn, dict):
            continue
        arguments = fn.get("arguments")
        output.append(
            call_item(
                call_item_id(response_id, i),
                call_id=str(call.get("id") or f"call_{i}"),
                name=str(fn.get("name") or ""),
                arguments=arguments if isinstance(arguments, str) else "{}",
                status=status,
            )
        )
    response["output"] = output
    raw_usage = obj.get("usage")
    finish(response, finish_reason, usage_of(raw_usage), reasoning_tokens_of(raw_usage))
    return orjson.dumps(response)
