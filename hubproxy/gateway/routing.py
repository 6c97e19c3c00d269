"""Where one try of a call goes: a provider by name and the model name it knows. The catalog
(hubproxy/catalog) resolves a requested model or alias into an ordered list of these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    provider: str  # the provider entry's name
    model: str  # the model name the upstream knows

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"
