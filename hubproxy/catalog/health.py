"""Passive model availability: success rate, last error and p50 latency of the last 100 calls.

The gateway core calls `observe()` once per finished upstream try; the API reads `view()`.
In memory only, per process: nothing here touches the database.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median_low

WINDOW = 100


@dataclass(slots=True)
class _Model:
    calls: deque[tuple[bool, float]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    last_error: str | None = None


class Health:
    def __init__(self) -> None:
        self._models: dict[str, _Model] = {}

    def observe(self, model: str, ok: bool, latency_ms: float, error: str | None = None) -> None:
        """One call to `model` ("provider/model") ended: `ok`, after `latency_ms`."""
        entry = self._models.get(model)
        if entry is None:
            entry = self._models[model] = _Model()
        entry.calls.append((ok, latency_ms))
        if not ok and error:
            entry.last_error = error

    def view(self, model: str) -> dict[str, object]:
        """{"calls", "success_rate", "p50_latency_ms", "last_error"} over the last 100 calls;
        rate and latency are None before the first call."""
        entry = self._models.get(model)
        if entry is None or not entry.calls:
            return {"calls": 0, "success_rate": None, "p50_latency_ms": None, "last_error": None}
        calls = entry.calls
        ok = sum(1 for good, _ in calls if good)
        return {
            "calls": len(calls),
            "success_rate": round(ok / len(calls), 4),
            "p50_latency_ms": round(median_low(ms for _, ms in calls), 1),
            "last_error": entry.last_error,
        }
