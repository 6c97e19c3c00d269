"""Config checks that name the file, the key and the fix, collected so that one run reports
every problem of a config at once (config/load.py reads with it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A config that must not start: the message names the file, the key and the fix."""


class Reader:
    """Type and key checks that name the file, the key and the fix. Problems are collected,
    so that one run reports all of them; done() refuses if there were any."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []  # each one sentence ending in its fix

    def problem(self, key: str, expected: str) -> None:
        self.problems.append(_expected(key, expected))

    def check(self, ok: bool, key: str, expected: str) -> None:
        if not ok:
            self.problem(key, expected)

    def url(self, value: str, key: str) -> None:
        """An upstream URL: http or https, with a host."""
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. a malformed IPv6 literal
            ok = False
        self.check(ok, key, f"an http:// or https:// URL with a host, got {value!r}")

    def done(self) -> None:
        if len(self.problems) == 1:
            raise ConfigError(f"{self.path}: {self.problems[0]}")
        if self.problems:
            listed = "".join(f"\n  - {p}" for p in self.problems)
            raise ConfigError(f"{self.path}: {len(self.problems)} problems:{listed}")

    def keys(self, table: Mapping[str, Any], where: str, known: set[str]) -> None:
        place = f"[{where}] " if where else ""
        for key in sorted(set(table) - known):
            self.problems.append(
                f"unknown key {place}{key!r}. "
                f"Fix: use one of {', '.join(sorted(known))}, or remove it."
            )

    def table(self, raw: Mapping[str, Any], name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of table `name` that have the right type (problems noted for the rest)."""
        value = raw.get(name, {})
        if not isinstance(value, dict):
            self.problem(f"[{name}]", "a table")
            return {}
        self.keys(value, name, set(spec))
        out: dict[str, Any] = {}
        for key, val in value.items():
            want = spec.get(key)
            if want is None:
                continue  # unknown: noted above
            ok = isinstance(val, want) and not (isinstance(val, bool) and want is not bool)
            if want is float and isinstance(val, int) and not isinstance(val, bool):
                val, ok = float(val), True
            if not ok:
                kind = _TYPE_NAMES.get(want, "decimal number or string")
                self.problem(f"[{name}] {key}", f"a {kind}, got {val!r}")
                continue
            out[key] = val
        return out


def _expected(key: str, expected: str) -> str:
    return f"{key}: expected {expected}. Fix the value in that file."


_TYPE_NAMES = {str: "string", int: "whole number", float: "number", list: "list", dict: "table"}
