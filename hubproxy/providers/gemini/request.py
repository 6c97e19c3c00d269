"""OpenAI chat and embeddings requests → Gemini (Generative Language API v1beta) requests. Pure.

Roles become user/model, the system prompt `systemInstruction`, tool calls `functionCall`
parts and tool results `functionResponse` parts (Gemini names the function, not the call,
so the name is looked up from the assistant message that made the call). Tool and response
schemas go in the fields that take JSON Schema (`parametersJsonSchema`,
`responseJsonSchema`), which accept what OpenAI clients send, additionalProperties included.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from hubproxy.providers.base import JSON
from hubproxy.providers.openai.chat import (
    bad,
    check_single_choice,
    data_url,
    function_tools,
    image_url,
    integer,
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

NAME = "Gemini"
# Gemini 3 models refuse a replayed functionCall part without the thoughtSignature they sent
# with it. An OpenAI client has nowhere to keep that signature, so the placeholder Google
# documents for histories built elsewhere is sent instead (older models ignore it).
SKIP_SIGNATURE = "skip_thought_signature_validator"
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


def model_path(model: str) -> str:
    """`models/<name>` (or a tunedModels/ path as given), quoted for a URL."""
    path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return quote(path, safe="/")


def generate_body(body: JSON) -> JSON:
    """The GenerateContentRequest for an OpenAI chat request (which is not modified)."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    check_single_choice(body, NAME)
    if body.get("logprobs") or body.get("top_logprobs"):
        raise unsupported("'logprobs'", "logprobs", NAME)
    system, contents = _contents(body)
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    tools = function_tools(body, NAME)
    choice = tool_choice(body)
    if tools:
        declarations = []
        for name, desc, params in tools:
            declaration: JSON = {"name": name}
            if desc:
                declaration["description"] = desc
            if params and params.get("properties") != {}:
                declaration["parametersJsonSchema"] = params
            declarations.append(declaration)
        out["tools"] = [{"functionDeclarations": declarations}]
        if choice is not None:
            mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(choice[0], "ANY")
            calling: JSON = {"mode": mode}
            if choice[1] is not None:
                calling["allowedFunctionNames"] = [choice[1]]
            out["toolConfig"] = {"functionCallingConfig": calling}
    return out


def _generation_config(body: JSON) -> JSON:
    config: JSON = {}
    limit = max_tokens(body)
    if limit is not None:
        config["maxOutputTokens"] = limit
    for key, name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = number(body, key)
        if value is not None:
            config[name] = value
    seed = integer(body, "seed")
    if seed is not None:
        config["seed"] = seed
    stop = stop_sequences(body)
    if stop:
        config["stopSequences"] = stop
    kind, schema = response_format(body)
    if kind != "text":
        config["responseMimeType"] = "application/json"
    if schema is not None:
        config["responseJsonSchema"] = schema
    return config


def _contents(body: JSON) -> tuple[list[str], list[JSON]]:
    """(system texts, contents with user/model roles, consecutive same roles merged)."""
    system: list[str] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}  # tool call id → function name, from the assistant messages
    for i, message in enumerate(messages_of(body)):
        where, role = f"messages[{i}]", message["role"]
        if role in ("system", "developer"):
            text = plain_text(message.get("content"), f"{where}.content")
            if text:
                system.append(text)
            continue
        if role == "user":
            parts, role = _user_parts(message.get("content"), f"{where}.content"), "user"
        elif role == "assistant":
            parts, role = _model_parts(message, where, names), "model"
        elif role == "tool":
            parts, role = [_function_response(message, where, names)], "user"
        else:
            raise bad(f"{where}.role {role!r} is not supported.", f"{where}.role")
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise bad("At least one user or assistant message is required.", "messages")
    return system, contents


def _user_parts(content: Any, where: str) -> list[JSON]:
    parts: list[JSON] = []
    for j, part in enumerate(parts_of(content, where)):
        at, kind = f"{where}[{j}]", part["type"]
        if kind == "text":
            text = text_of_part(part, at)
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            url = image_url(part, at)
            if url.startswith("data:"):
                mime, data = data_url(url, f"{at}.image_url.url")
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            elif is_web_url(url):
                guessed = mimetypes.guess_type(urlsplit(url).path)[0]
                mime = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
                parts.append({"fileData": {"mimeType": mime, "fileUri": url}})
            else:
                raise bad(f"{at}.image_url.url must be an https or a data URL.", at)
        elif kind == "input_audio":
            audio = part.get("input_audio")
            audio = audio if isinstance(audio, dict) else {}
            sound, fmt = audio.get("data"), audio.get("format")
            if not isinstance(sound, str) or not isinstance(fmt, str) or fmt not in AUDIO_TYPES:
                raise bad(f"{at}.input_audio needs base64 'data' and a wav or mp3 'format'.", at)
            parts.append({"inlineData": {"mimeType": AUDIO_TYPES[fmt], "data": sound}})
        elif kind == "file":
            ref = part.get("file")
            file_data = ref.get("file_data") if isinstance(ref, dict) else None
            if not isinstance(file_data, str):
                raise unsupported("A file part without inline file_data", at, NAME)
            mime, data = data_url(file_data, f"{at}.file.file_data")
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        else:
            raise unsupported(f"The content part type {kind!r}", at, NAME)
    return parts


def _model_parts(message: JSON, where: str, names: dict[str, str]) -> list[JSON]:
    parts: list[JSON] = []
    for j, part in enumerate(parts_of(message.get("content"), f"{where}.content")):
        at = f"{where}.content[{j}]"
        if part["type"] not in ("text", "refusal"):
            raise unsupported(f"The assistant content part type {part['type']!r}", at, NAME)
        text = text_of_part(part, at)
        if text:
            parts.append({"text": text})
    for n, (call_id, name, arguments) in enumerate(tool_calls_of(message, where)):
        names[call_id] = name
        call: JSON = {"functionCall": {"name": name, "args": arguments}}
        if n == 0:
            call["thoughtSignature"] = SKIP_SIGNATURE  # only the first call of a turn has one
        parts.append(call)
    return parts


def _function_response(message: JSON, where: str, names: dict[str, str]) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise bad(
            f"{where}.tool_call_id must name a tool call of an earlier assistant message.",
            f"{where}.tool_call_id",
        )
    text = plain_text(message.get("content"), f"{where}.content")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    # Gemini wants an object; "output" is the key it documents for a plain result.
    response = value if isinstance(value, dict) else {"output": text}
    return {"functionResponse": {"name": names[call_id], "response": response}}


def embed_body(body: JSON, model: str) -> JSON:
    """The BatchEmbedContentsRequest for an OpenAI embeddings request: one request per input."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        raise bad("'input' must be a string or a non-empty list of strings.", "input")
    if not all(isinstance(text, str) for text in inputs):
        raise unsupported("Token arrays as 'input'", "input", NAME)
    dimensions = integer(body, "dimensions")
    path = model_path(model)
    requests = []
    for text in inputs:
        request: JSON = {"model": path, "content": {"parts": [{"text": text}]}}
        if dimensions:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}
