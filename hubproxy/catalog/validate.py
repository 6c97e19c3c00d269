"""Checking what an admin sends (API body or CLI flags): each refusal names the field and the
fix. Pure: the caller supplies what exists already."""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from typing import Any

from hubproxy.catalog.names import ALIAS_NAME, check_model_name, split_model
from hubproxy.catalog.ssrf import parse_base_url
from hubproxy.config import PROVIDER_NAME
from hubproxy.errors import BadRequest, Unprocessable

PROVIDER_TYPES = ("openai", "anthropic", "gemini", "azure", "fake")
MODEL_TYPES = ("chat", "embedding", "image", "audio")
PROVIDER_FIELDS = frozenset(
    {"name", "type", "base_url", "headers", "api_version", "connect_timeout_s",
     "idle_timeout_s", "enabled"}
)  # fmt: skip
CREDENTIAL_FIELDS = frozenset({"label", "key", "weight", "enabled"})
MODEL_FIELDS = frozenset({"model", "type", "display_name", "context_window", "enabled"})
MAX_WEIGHT = 1000
MAX_TIMEOUT_S = 3600.0
MAX_CHAIN = 10  # targets an alias expands to
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
# Keys travel as credentials, sealed; a header would show them in clear.
_KEY_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization", "cookie"}
)
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


def only(body: Mapping[str, Any], allowed: Set[str]) -> None:
    for name in body:
        if name not in allowed:
            raise Unprocessable(
                f"'{name}' cannot be set here; allowed: {', '.join(sorted(allowed))}.",
                code="field_not_allowed",
                param=name,
            )


def provider(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """A provider's fields, checked; `partial` for a PATCH (what is given only). The
    base_url's address is checked by the caller (ssrf.check_base_url: it may resolve)."""
    only(body, PROVIDER_FIELDS)
    out: dict[str, Any] = {}
    if "name" in body or not partial:
        name = body.get("name")
        if not isinstance(name, str) or not PROVIDER_NAME.match(name):
            raise BadRequest(
                "'name' must be 1 to 63 lower-case letters, digits, '.', '_' or '-', starting "
                "with a letter or digit, e.g. openai.",
                param="name",
            )
        out["name"] = name
    if "type" in body or not partial:
        kind = body.get("type")
        if kind not in PROVIDER_TYPES:
            raise BadRequest(
                f"'type' must be one of: {', '.join(PROVIDER_TYPES)}; got {kind!r}.",
                param="type",
            )
        out["type"] = kind
    if "base_url" in body:
        out["base_url"] = parse_base_url(body["base_url"])[0] if body["base_url"] != "" else ""
    elif not partial:
        out["base_url"] = ""
    if not partial and not out["base_url"] and out["type"] != "fake":
        raise BadRequest(
            "'base_url' is required: the upstream's URL, e.g. https://api.openai.com/v1.",
            param="base_url",
        )
    if "headers" in body or not partial:
        out["headers"] = headers(body.get("headers", {}))
    if "api_version" in body or not partial:
        version = body.get("api_version", "")
        if not isinstance(version, str) or len(version) > 64:
            raise BadRequest("'api_version' must be a short string.", param="api_version")
        out["api_version"] = version
    for name, default in (("connect_timeout_s", 10.0), ("idle_timeout_s", 120.0)):
        if name in body or not partial:
            out[name] = seconds(body.get(name, default), name)
    if "enabled" in body or not partial:
        out["enabled"] = flag(body.get("enabled", True), "enabled")
    return out


def headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 32:
        raise BadRequest(
            "'headers' must be an object of at most 32 names to strings.", param="headers"
        )
    for name, text in value.items():
        if not _HEADER.match(name) or not isinstance(text, str) or len(text) > 1024:
            raise BadRequest(
                f"'headers' entry {name!r} must be a header name with a string value.",
                param="headers",
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise BadRequest(
                f"'headers' value of {name!r} has a control character.", param="headers"
            )
        if name.lower() in _KEY_HEADERS:
            raise BadRequest(
                f"'headers' may not carry {name}: add the key as a credential instead (it is "
                "then sealed at rest and never shown).",
                param="headers",
            )
    return dict(value)


def credential(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    only(body, CREDENTIAL_FIELDS)
    out: dict[str, Any] = {}
    if "label" in body or not partial:
        out["label"] = label(body.get("label"))
    if "key" in body or not partial:
        out["key"] = key(body.get("key"))
    if "weight" in body or not partial:
        out["weight"] = weight(body.get("weight", 1))
    if "enabled" in body:
        out["enabled"] = flag(body["enabled"], "enabled")
    return out


def label(value: Any) -> str:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise BadRequest(
            "'label' must be 1 to 64 letters, digits, '.', '_', ':', '@' or '-', e.g. prod-1.",
            param="label",
        )
    return value


def key(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("'key' must be the provider's API key; it is empty.", param="key")
    text: str = value.strip()
    if len(text) > 4096 or any(c.isspace() or ord(c) < 32 for c in text):
        raise BadRequest(
            "'key' must be one line of at most 4096 characters, without spaces.", param="key"
        )
    return text


def weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_WEIGHT:
        raise BadRequest(
            f"'weight' must be a whole number from 1 to {MAX_WEIGHT}; got {value!r}.",
            param="weight",
        )
    return value


def model(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    only(body, MODEL_FIELDS)
    out: dict[str, Any] = {}
    if not partial:
        out["provider"], out["model"] = split_model(body.get("model"))
    elif "model" in body:
        raise Unprocessable(
            "'model' cannot change; remove the row and add the new model.",
            code="field_not_allowed",
            param="model",
        )
    if "type" in body or not partial:
        kind = body.get("type", "chat")
        if kind not in MODEL_TYPES:
            raise BadRequest(f"'type' must be one of: {', '.join(MODEL_TYPES)}.", param="type")
        out["type"] = kind
    if "display_name" in body or not partial:
        shown = body.get("display_name", "")
        if not isinstance(shown, str) or len(shown) > 200:
            raise BadRequest("'display_name' must be at most 200 characters.", param="display_name")
        out["display_name"] = shown
    if "context_window" in body or not partial:
        window = body.get("context_window")
        bad = window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or not 0 < window <= 10**8
        )
        if bad:
            raise BadRequest(
                "'context_window' must be a whole number of tokens, e.g. 128000, or null.",
                param="context_window",
            )
        out["context_window"] = window
    if "enabled" in body or not partial:
        out["enabled"] = flag(body.get("enabled", True), "enabled")
    return out


def seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"'{name}' must be a number of seconds.", param=name)
    if not 0 < value <= MAX_TIMEOUT_S:
        raise BadRequest(f"'{name}' must be more than 0 and at most 3600.", param=name)
    return float(value)


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false.", param=name)
    return value


def aliases(
    doc: Any,
    *,
    providers: Mapping[str, Set[str]],
) -> dict[str, list[str]]:
    """The alias document, checked against the providers (name → the models it offers;
    empty: any model). Each target is "provider/model" or another alias; no cycles."""
    if not isinstance(doc, dict) or len(doc) > 1000:
        raise BadRequest(
            "'aliases' must be an object of names to a target or a list of targets, e.g. "
            '{"fast": ["groq/llama-3.1-8b-instant", "openai/gpt-4o-mini"]}.',
            param="aliases",
        )
    out: dict[str, list[str]] = {}
    for name, value in doc.items():
        where = f"aliases.{name}"
        if not ALIAS_NAME.match(name):
            raise BadRequest(
                f"'{where}': an alias name is letters, digits, '.', '_', ':' or '-' (no '/').",
                param=where,
            )
        targets = [value] if isinstance(value, str) else value
        if not isinstance(targets, list) or not targets or len(targets) > MAX_CHAIN:
            raise BadRequest(
                f"'{where}' must be a target or a list of 1 to {MAX_CHAIN} targets.", param=where
            )
        for i, target in enumerate(targets):
            at = f"{where}[{i}]"
            check_model_name(target, at)
            if isinstance(target, str) and "/" not in target and target in doc:
                continue  # another alias
            provider_name, upstream = split_model(target, at)
            offered = providers.get(provider_name)
            if offered is None:
                raise BadRequest(
                    f"'{at}' names provider '{provider_name}', which does not exist. Fix: add "
                    "it first (hubproxy providers add), or correct the name.",
                    code="unknown_provider",
                    param=at,
                )
            if offered and upstream not in offered:
                raise BadRequest(
                    f"'{at}' names model '{target}', which is not in the catalogue. Fix: add "
                    f"it first (hubproxy models add {target}), or correct the name.",
                    code="unknown_model",
                    param=at,
                )
        out[name] = list(targets)
    for name in out:
        expand(name, out)
    return out


def expand(name: str, doc: Mapping[str, list[str]], trail: tuple[str, ...] = ()) -> list[str]:
    """An alias's provider/model targets, in order, with aliases inside it expanded."""
    if name in trail:
        cycle = " → ".join((*trail[trail.index(name) :], name))
        raise BadRequest(
            f"'aliases.{trail[0]}' makes a cycle: {cycle}. Fix: point one of them at a "
            "provider/model instead.",
            code="alias_cycle",
            param=f"aliases.{trail[0]}",
        )
    out: list[str] = []
    for target in doc[name]:
        for t in expand(target, doc, (*trail, name)) if target in doc else [target]:
            if t not in out:
                out.append(t)
    if len(out) > MAX_CHAIN:
        raise BadRequest(
            f"'aliases.{name}' expands to more than {MAX_CHAIN} targets.", param=f"aliases.{name}"
        )
    return out
