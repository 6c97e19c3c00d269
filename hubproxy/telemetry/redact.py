"""Secret redaction: the process-wide registry of secret values, and scrub(), which blanks them
(and anything shaped like a key) in text bound for a client, a log line or the database.

Whatever holds a credential registers it here: config loading does it for every provider key
(through `config.Secret`), and so will a credential store. scrub() then replaces every
registered value wherever it appears, whatever its shape (an Azure key is 32 hex digits, a
custom server's key can be anything), with one compiled alternation that is rebuilt only when
the registry changes. It runs on error paths and on log lines, never per stream chunk.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

import orjson

MASK = "[redacted]"
# A value shorter than this would blank ordinary words; no real credential is that short.
MIN_LENGTH = 8
# Anything shaped like a hub key or a provider key (OpenAI, Anthropic, Google), registered
# or not: a key the client sent that is not ours, a key quoted back by an upstream.
_KEY_SHAPED = r"\b(?:hp-|sk-|AIza)[A-Za-z0-9_\-]{12,}"


def _forms(value: str) -> set[str]:
    """The ways a value can appear in text: as is, escaped in JSON (with or without the
    optional escape of "/"), percent-encoded."""
    in_json = orjson.dumps(value).decode()[1:-1]
    return {value, in_json, in_json.replace("/", "\\/"), quote(value, safe="")}


class SecretRegistry:
    """The secret values of this process. Registering is rare (startup, a key added); scrub
    reads the current pattern without a lock, so it is safe from any thread."""

    def __init__(self) -> None:
        self._values: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._pattern = re.compile(_KEY_SHAPED)

    def register(self, *values: str) -> None:
        """Blank these values from now on (values shorter than MIN_LENGTH are ignored)."""
        with self._lock:
            new = {form for v in values if len(v) >= MIN_LENGTH for form in _forms(v)}
            if new <= self._values:
                return
            self._values |= new
            # Longest first, so that a secret containing another is blanked whole.
            literals = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join([*map(re.escape, literals), _KEY_SHAPED]))

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def scrub(self, text: str) -> str:
        """`text` with every registered secret and every key-shaped string replaced by MASK."""
        return self._pattern.sub(MASK, text)


REGISTRY = SecretRegistry()


def register(*values: str) -> None:
    """Register secret values with the process-wide registry."""
    REGISTRY.register(*values)


def scrub(text: str) -> str:
    """Blank every registered secret and anything key-shaped in `text`."""
    return REGISTRY.scrub(text)
