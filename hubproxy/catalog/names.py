"""Which names may be used: model names that cannot escape an upstream's URL path, and
provider and alias names."""

from __future__ import annotations

import re
from typing import Any

from hubproxy.config import PROVIDER_NAME
from hubproxy.errors import BadRequest

ALIAS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_MODEL = 256
# What may not stand in a model name: `..`, `?`, `#`, `%`, a backslash, a space or a control.
_UNSAFE = re.compile(r"\.\.|[?#%\\\s\x00-\x1f\x7f-\x9f]")


def check_model_name(name: Any, param: str = "model") -> str:
    """`name` if it is safe to put in an upstream's URL path (Gemini puts it there): no
    `..`, `?`, `#`, `%` or backslash, no control character or space, not starting with `/`.
    Otherwise a 400 naming `param`."""
    if not isinstance(name, str) or not name:
        raise BadRequest(f"'{param}' must be a non-empty string.", param=param)
    if len(name) > MAX_MODEL:
        raise BadRequest(f"'{param}' is longer than {MAX_MODEL} characters.", param=param)
    found = _UNSAFE.search(name)
    if found is None and not name.startswith("/"):
        return name
    if found is None:
        bad = "a leading '/'"
    elif found.group() in ("..", "?", "#", "%", "\\"):
        bad = found.group()
    else:
        bad = "a control character or space"
    shown = bad if bad.startswith("a ") else repr(bad)
    raise BadRequest(
        f"'{param}' must not contain {shown}: name a model as provider/model.",
        code="invalid_model_name",
        param=param,
    )


def split_model(name: Any, param: str = "model") -> tuple[str, str]:
    """ "provider/model" → (provider, model), both checked."""
    check_model_name(name, param)
    provider, sep, model = str(name).partition("/")
    if not sep or not provider or not model or not PROVIDER_NAME.match(provider):
        raise BadRequest(
            f"'{param}' must be provider/model, e.g. openai/gpt-4o-mini; got {name!r}.",
            param=param,
        )
    return provider, model
