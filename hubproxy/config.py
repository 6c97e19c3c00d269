"""Settings: TOML and HUBPROXY_* variables into frozen dataclasses; the only reader of environ."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("config/hubproxy.toml")
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class ConfigError(Exception):
    """A config that must not start: the message names the file, the key and the fix."""


class Secret:
    """A credential that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    path: Path = Path("data/hubproxy.db")
    busy_timeout_ms: int = 5000
    stale_after_s: float = 1800.0  # a call still `processing` after this is marked failed
    sweep_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 120.0  # between two chunks (and until the response headers)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    reload_interval_s: float = 0.5  # how soon a key created or revoked elsewhere takes effect
    secret_key: Secret | None = None  # $HUBPROXY_SECRET_KEY: the master key others derive from


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "info"
    format: str = "auto"  # auto: readable on a TTY, JSON otherwise; or "json", "console"
    traces: str = "off"  # "off": propagate W3C trace context only; "console": export spans


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    name: str
    type: str
    base_url: str = ""
    api_keys: tuple[Secret, ...] = ()
    models: tuple[str, ...] = ()  # allow-list; empty allows any model
    headers: Mapping[str, str] = field(default_factory=dict)
    api_version: str = ""  # Azure's api-version, Anthropic's anthropic-version
    connect_timeout_s: float = 10.0
    idle_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class RateSettings:
    """A price from the config; decimal strings of credits (per 1M tokens, or per image)."""

    provider: str
    model: str
    type: str
    input: str
    output: str
    cached_input: str | None
    per_image: str


@dataclass(frozen=True, slots=True)
class MeterSettings:
    url: str = ""  # empty: no export (events still wait in the outbox)
    batch_size: int = 100
    interval_s: float = 2.0
    timeout_s: float = 10.0
    max_backoff_s: float = 300.0


@dataclass(frozen=True, slots=True)
class BillingSettings:
    mode: str = "off"  # "off": record usage, bill nothing; "credits": hold and debit
    default_max_tokens: int = 4096  # output held for a call that sets no max_tokens
    rates: tuple[RateSettings, ...] = ()  # seeded into model_rates where none is set
    meter: MeterSettings = MeterSettings()


@dataclass(frozen=True, slots=True)
class Settings:
    source: Path | None = None
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    auth: AuthSettings = AuthSettings()
    log: LogSettings = LogSettings()
    providers: tuple[ProviderSettings, ...] = ()
    billing: BillingSettings = BillingSettings()


def locate(cli_path: str | None) -> Path:
    """--config, else $HUBPROXY_CONFIG, else config/hubproxy.toml."""
    return Path(cli_path or os.environ.get("HUBPROXY_CONFIG") or DEFAULT_CONFIG)


def load(path: Path, *, secrets: bool = True) -> Settings:
    """Read and validate a config file, then apply HUBPROXY_* overrides. With secrets=False,
    provider keys are not resolved (for commands that only touch the database)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file. Fix: pass --config PATH or set HUBPROXY_CONFIG."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax.") from None
    return parse(raw, path, secrets=secrets)


def parse(raw: Mapping[str, Any], path: Path, *, secrets: bool = True) -> Settings:
    r = _Reader(path)
    r.keys(raw, "", {"server", "database", "upstream", "auth", "log", "providers", "billing"})
    base = path.resolve().parent

    srv = r.table(raw, "server", {"host": str, "port": int, "max_body_mb": float})
    default = ServerSettings()
    server = ServerSettings(
        host=_env("HUBPROXY_HOST") or srv.get("host", default.host),
        port=_env_int("HUBPROXY_PORT") or srv.get("port", default.port),
        max_body_bytes=int(srv.get("max_body_mb", 20) * 1024 * 1024),
    )
    r.check(1 <= server.port <= 65535, "[server] port", "a port from 1 to 65535")
    r.check(server.max_body_bytes > 0, "[server] max_body_mb", "a positive size")

    db = r.table(
        raw,
        "database",
        {"path": str, "busy_timeout_ms": int, "stale_after_s": float, "sweep_interval_s": float},
    )
    env_db = _env("HUBPROXY_DB")
    db_path = Path(env_db).resolve() if env_db else base / db.get("path", "data/hubproxy.db")
    database = DatabaseSettings(
        path=db_path,
        busy_timeout_ms=db.get("busy_timeout_ms", 5000),
        stale_after_s=db.get("stale_after_s", 1800.0),
        sweep_interval_s=db.get("sweep_interval_s", 60.0),
    )
    r.check(database.stale_after_s > 0, "[database] stale_after_s", "a positive number")
    r.check(database.sweep_interval_s > 0, "[database] sweep_interval_s", "a positive number")

    up = r.table(raw, "upstream", {"connect_timeout_s": float, "idle_timeout_s": float})
    upstream = UpstreamSettings(**up)
    master = _env("HUBPROXY_SECRET_KEY")
    auth = AuthSettings(
        **r.table(raw, "auth", {"reload_interval_s": float}),
        secret_key=Secret(master) if master and secrets else None,
    )
    log = LogSettings(**r.table(raw, "log", {"level": str, "format": str, "traces": str}))
    r.check(log.traces in ("off", "console"), "[log] traces", '"off" or "console"')
    r.check(
        log.format in ("auto", "json", "console"), "[log] format", '"auto", "json" or "console"'
    )
    r.check(
        log.level in ("debug", "info", "warning", "error"),
        "[log] level",
        '"debug", "info", "warning" or "error"',
    )

    providers = tuple(
        _provider(r, entry, i, upstream, secrets) for i, entry in enumerate(_list(r, raw))
    )
    names = [p.name for p in providers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    r.check(not dupes, "[[providers]] name", f"unique names (repeated: {', '.join(dupes)})")
    billing = _billing(r, raw)
    return Settings(path, server, database, upstream, auth, log, providers, billing)


def _billing(r: _Reader, raw: Mapping[str, Any]) -> BillingSettings:
    from hubproxy.errors import HubError
    from hubproxy.money import parse_amount

    spec = {"mode": str, "default_max_tokens": int, "rates": list, "meter": dict}
    b = r.table(raw, "billing", spec)
    r.check(b.get("mode", "off") in ("off", "credits"), "[billing] mode", '"off" or "credits"')
    r.check(b.get("default_max_tokens", 1) > 0, "[billing] default_max_tokens", "more than 0")
    meter_spec = {
        "url": str, "batch_size": int, "interval_s": float, "timeout_s": float,
        "max_backoff_s": float,
    }  # fmt: skip
    meter = MeterSettings(
        **r.table({"billing.meter": b.get("meter", {})}, "billing.meter", meter_spec)
    )
    r.check(meter.batch_size > 0, "[billing.meter] batch_size", "more than 0")
    rates: list[RateSettings] = []
    amount_spec = {
        "model": str, "type": str, "input": (str, int, float), "output": (str, int, float),
        "cached_input": (str, int, float), "per_image": (str, int, float),
    }  # fmt: skip
    for i, entry in enumerate(b.get("rates", [])):
        where = f"billing.rates[{i}]"
        if not isinstance(entry, dict):
            raise r.error(where, "a [[billing.rates]] table")
        e = r.table({where: entry}, where, amount_spec)
        provider, sep, model = str(e.get("model", "")).partition("/")
        r.check(bool(sep and provider and model), f"[{where}] model", '"provider/model"')
        r.check(
            e.get("type", "chat") in ("chat", "embedding"),
            f"[{where}] type",
            '"chat" or "embedding"',
        )
        try:
            for name in ("input", "output", "cached_input", "per_image"):
                if name in e:
                    parse_amount(e[name], name)
        except HubError as exc:
            raise r.error(f"[{where}]", f"decimal credits: {exc}") from None
        rates.append(
            RateSettings(
                provider, model, e.get("type", "chat"), str(e.get("input", "0")),
                str(e.get("output", "0")),
                None if "cached_input" not in e else str(e["cached_input"]),
                str(e.get("per_image", "0")),
            )
        )  # fmt: skip
    return BillingSettings(
        mode=b.get("mode", "off"),
        default_max_tokens=b.get("default_max_tokens", 4096),
        rates=tuple(rates),
        meter=meter,
    )


def _provider(
    r: _Reader, entry: Any, i: int, upstream: UpstreamSettings, secrets: bool
) -> ProviderSettings:
    from hubproxy.providers import FORMATS  # late: providers import this module

    where = f"providers[{i}]"
    if not isinstance(entry, dict):
        raise r.error(where, "a [[providers]] table")
    spec = {
        "name": str,
        "type": str,
        "base_url": str,
        "api_key": str,
        "api_key_env": str,
        "api_keys_env": list,
        "models": list,
        "headers": dict,
        "api_version": str,
        "connect_timeout_s": float,
        "idle_timeout_s": float,
    }
    p = r.table({where: entry}, where, spec)
    for required in ("name", "type"):
        if required not in p:
            raise r.error(f"{where}.{required}", f'a {required}, e.g. {required} = "openai"')
    name, kind = p["name"], p["type"]
    where = f'providers "{name}"'
    r.check(bool(PROVIDER_NAME.match(name)), f"{where}.name", "lower-case letters, digits, . _ -")
    r.check(kind in FORMATS, f"{where}.type", "one of: " + ", ".join(sorted(FORMATS)))
    if kind != "fake":
        r.check(bool(p.get("base_url")), f"{where}.base_url", "the upstream's URL")
    models = tuple(_strings(r, p.get("models", []), f"{where}.models"))
    headers = p.get("headers", {})
    r.check(all(isinstance(v, str) for v in headers.values()), f"{where}.headers", "string values")
    keys: list[Secret] = []
    if secrets:
        if "api_key" in p:
            keys.append(Secret(p["api_key"]))
        env_names = [p["api_key_env"]] if "api_key_env" in p else []
        env_names += _strings(r, p.get("api_keys_env", []), f"{where}.api_keys_env")
        for var in env_names:
            value = _env(var)
            if not value:
                raise ConfigError(
                    f"{r.path}: {where}.api_key_env names ${var}, which is not set. "
                    f"Fix: export {var}=... before starting, or remove the provider."
                )
            keys.append(Secret(value))
        if kind != "fake" and not keys:
            raise r.error(f"{where}.api_key_env", 'a key: api_key_env = "NAME_OF_ENV_VAR"')
    return ProviderSettings(
        name=name,
        type=kind,
        base_url=p.get("base_url", "").rstrip("/"),
        api_keys=tuple(keys),
        models=models,
        headers=dict(headers),
        api_version=p.get("api_version", ""),
        connect_timeout_s=p.get("connect_timeout_s", upstream.connect_timeout_s),
        idle_timeout_s=p.get("idle_timeout_s", upstream.idle_timeout_s),
    )


class _Reader:
    """Type and key checks that name the file, the key and the fix."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: expected {expected}. Fix the value in that file.")

    def check(self, ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise self.error(key, expected)

    def keys(self, table: Mapping[str, Any], where: str, known: set[str]) -> None:
        unknown = sorted(set(table) - known)
        if unknown:
            place = f"[{where}] " if where else ""
            raise ConfigError(
                f"{self.path}: unknown key {place}{unknown[0]!r}. "
                f"Fix: use one of {', '.join(sorted(known))}, or remove it."
            )

    def table(self, raw: Mapping[str, Any], name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise self.error(f"[{name}]", "a table")
        self.keys(value, name, set(spec))
        out: dict[str, Any] = {}
        for key, val in value.items():
            want = spec[key]
            ok = isinstance(val, want) and not (isinstance(val, bool) and want is not bool)
            if want is float and isinstance(val, int) and not isinstance(val, bool):
                val, ok = float(val), True
            if not ok:
                kind = _TYPE_NAMES.get(want, "decimal number or string")
                raise self.error(f"[{name}] {key}", f"a {kind}, got {val!r}")
            out[key] = val
        return out


_TYPE_NAMES = {str: "string", int: "whole number", float: "number", list: "list", dict: "table"}


def _list(r: _Reader, raw: Mapping[str, Any]) -> list[Any]:
    value = raw.get("providers", [])
    if not isinstance(value, list):
        raise r.error("providers", "[[providers]] tables")
    return value


def _strings(r: _Reader, value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise r.error(key, "a list of strings")
    return value


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _env_int(name: str) -> int | None:
    value = _env(name)
    if value is None:
        return None
    if not value.isdigit():
        raise ConfigError(f"${name}={value!r}: expected a whole number. Fix the variable.")
    return int(value)
