"""Model strings to routes: "provider/model" → the provider and the upstream's model name. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hubproxy.config import ProviderSettings
from hubproxy.errors import BadRequest, NotFound


@dataclass(frozen=True, slots=True)
class Route:
    provider: str  # the provider entry's name
    model: str  # the model name the upstream knows


class Router:
    def __init__(self, providers: Sequence[ProviderSettings]) -> None:
        self._allowed = {p.name: frozenset(p.models) for p in providers}
        self._listed = [f"{p.name}/{m}" for p in providers for m in p.models]

    def resolve(self, model: Any) -> Route:
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' must be a non-empty string.", param="model")
        name, sep, upstream_model = model.partition("/")
        allowed = self._allowed.get(name) if sep and upstream_model else None
        if allowed is None:
            raise NotFound(
                f"The model '{model}' does not exist: name it as provider/model, "
                f"with a provider of {', '.join(sorted(self._allowed)) or '(none configured)'}.",
                code="model_not_found",
                param="model",
            )
        if allowed and upstream_model not in allowed:
            raise NotFound(
                f"The model '{model}' is not offered by provider '{name}'.",
                code="model_not_found",
                param="model",
            )
        return Route(name, upstream_model)

    def models(self) -> list[str]:
        """The `provider/model` ids of every allow-list, in config order."""
        return list(self._listed)
