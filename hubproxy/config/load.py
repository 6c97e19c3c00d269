"""Reading a config: TOML and HUBPROXY_* variables into Settings, every problem reported at
once; the only reader of os.environ."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hubproxy.config.reader import ConfigError, Reader
from hubproxy.config.settings import (
    DEFAULT_CONFIG,
    MEDIA_AMOUNTS,
    PROVIDER_NAME,
    AigneSettings,
    AuthSettings,
    BillingSettings,
    DatabaseSettings,
    LimitsSettings,
    LogSettings,
    MeterSettings,
    MetricsSettings,
    ProviderSettings,
    RateSettings,
    ResponsesSettings,
    Secret,
    SecretsSettings,
    SecuritySettings,
    ServerSettings,
    Settings,
    TelemetrySettings,
    UpstreamSettings,
    database_url,
    redacted_url,
)


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
    """Validate everything, then refuse with every problem found at once (ConfigError)."""
    r = Reader(path)
    r.keys(
        raw,
        "",
        {"server", "database", "upstream", "auth", "log", "providers", "billing", "secrets",
         "security", "aigne", "limits", "responses", "metrics", "telemetry"},
    )  # fmt: skip
    base = path.resolve().parent

    srv = r.table(
        raw,
        "server",
        {"host": str, "port": int, "max_body_mb": float, "read_timeout_s": float,
         "drain_grace_s": float, "drain_s": float, "instance": str, "heartbeat_s": float,
         "dead_after_s": float, "reuse_port": bool},
    )  # fmt: skip
    default = ServerSettings()
    server = ServerSettings(
        host=_env("HUBPROXY_HOST") or srv.get("host", default.host),
        port=_env_int(r, "HUBPROXY_PORT") or srv.get("port", default.port),
        max_body_bytes=int(srv.get("max_body_mb", 20) * 1024 * 1024),
        read_timeout_s=_env_float("HUBPROXY_READ_TIMEOUT_S")
        or srv.get("read_timeout_s", default.read_timeout_s),
        drain_grace_s=srv.get("drain_grace_s", default.drain_grace_s),
        drain_s=srv.get("drain_s", default.drain_s),
        instance=_env("HUBPROXY_INSTANCE") or srv.get("instance", default.instance),
        heartbeat_s=srv.get("heartbeat_s", default.heartbeat_s),
        dead_after_s=srv.get("dead_after_s", default.dead_after_s),
        reuse_port=srv.get("reuse_port", default.reuse_port),
    )
    r.check(
        len(server.instance) <= 200 and server.instance == server.instance.strip(),
        "[server] instance",
        "an id of at most 200 characters, without leading or trailing spaces",
    )
    r.check(0 < server.heartbeat_s <= 600, "[server] heartbeat_s", "seconds, 0 to 600")
    r.check(
        server.dead_after_s >= 2 * server.heartbeat_s,
        "[server] dead_after_s",
        "seconds, at least twice heartbeat_s",
    )
    r.check(0 <= server.drain_grace_s <= 600, "[server] drain_grace_s", "seconds, 0 to 600")
    r.check(0 <= server.drain_s <= 3600, "[server] drain_s", "seconds, 0 to 3600")
    r.check(1 <= server.port <= 65535, "[server] port", "a port from 1 to 65535")
    r.check(server.max_body_bytes > 0, "[server] max_body_mb", "a positive size")
    r.check(0 < server.read_timeout_s <= 3600, "[server] read_timeout_s", "seconds, from 0 to 3600")

    db = r.table(
        raw,
        "database",
        {"path": str, "busy_timeout_ms": int, "stale_after_s": float, "sweep_interval_s": float,
         "keep_calls_days": int, "archive_dir": str, "url": str},
    )  # fmt: skip
    url = _env("HUBPROXY_DATABASE_URL") or db.get("url")
    r.check(
        url is None or _postgres_url(url),
        "[database] url (or HUBPROXY_DATABASE_URL)",
        f"a postgresql://user@host/database URL, got {redacted_url(url or '')!r}",
    )
    env_db = _env("HUBPROXY_DB")
    db_path = Path(env_db).resolve() if env_db else base / db.get("path", "data/hubproxy.db")
    database = DatabaseSettings(
        path=db_path,
        busy_timeout_ms=db.get("busy_timeout_ms", 5000),
        stale_after_s=db.get("stale_after_s", 1800.0),
        sweep_interval_s=db.get("sweep_interval_s", 60.0),
        keep_calls_days=db.get("keep_calls_days", 0),
        archive_dir=base / db["archive_dir"] if "archive_dir" in db else None,
        url=database_url(url) if url else None,
    )
    r.check(database.keep_calls_days >= 0, "[database] keep_calls_days", "0 (keep) or more")
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
        p
        for i, entry in enumerate(_list(r, raw))
        if (p := _provider(r, entry, i, upstream, secrets)) is not None
    )
    names = [p.name for p in providers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    r.check(not dupes, "[[providers]] name", f"unique names (repeated: {', '.join(dupes)})")
    billing = _billing(r, raw)
    sec = r.table(raw, "secrets", {"key_file": str})
    env_key, env_new = _env("HUBPROXY_SECRET_KEY"), _env("HUBPROXY_NEW_SECRET_KEY")
    secrets_ = SecretsSettings(
        key=Secret(env_key) if env_key else None,
        key_file=base / sec["key_file"] if "key_file" in sec else None,
        new_key=Secret(env_new) if env_new else None,
    )
    security = SecuritySettings(**r.table(raw, "security", {"allow_private_upstreams": bool}))
    aigne = _aigne(r, raw)
    limits = LimitsSettings(**r.table(raw, "limits", dict.fromkeys(LimitsSettings.__slots__, int)))
    for name in LimitsSettings.__slots__:
        r.check(getattr(limits, name) >= 0, f"[limits] {name}", "0 (no limit) or more")
    responses = ResponsesSettings(**r.table(raw, "responses", {"keep_days": int}))
    r.check(responses.keep_days >= 0, "[responses] keep_days", "0 (keep) or more days")
    metrics, telemetry = _observability(r, raw)
    r.done()
    return Settings(
        path, server, database, upstream, auth, log, providers, billing, secrets_, security,
        aigne=aigne, limits=limits, responses=responses, metrics=metrics, telemetry=telemetry,
    )  # fmt: skip


def _aigne(r: Reader, raw: Mapping[str, Any]) -> AigneSettings:
    a = r.table(raw, "aigne", {"default_model": str, "payment_link": str, "webhook_secret": str})
    secret = _env("HUBPROXY_AIGNE_WEBHOOK_SECRET") or a.get("webhook_secret")
    out = AigneSettings(
        default_model=a.get("default_model", "openai/gpt-5-mini"),
        payment_link=a.get("payment_link", ""),
        webhook_secret=Secret(secret) if secret else None,
    )
    provider, sep, model = out.default_model.partition("/")
    r.check(bool(sep and provider and model), "[aigne] default_model", '"provider/model"')
    if out.payment_link:
        r.url(out.payment_link, "[aigne] payment_link")
    return out


def _observability(r: Reader, raw: Mapping[str, Any]) -> tuple[MetricsSettings, TelemetrySettings]:
    m = r.table(raw, "metrics", {"token": str, "listen": str})
    token = _env("HUBPROXY_METRICS_TOKEN") or m.get("token")
    metrics = MetricsSettings(token=Secret(token) if token else None, listen=m.get("listen", ""))
    if metrics.listen:
        host, sep, port = metrics.listen.rpartition(":")
        r.check(
            bool(sep and host and port.isdigit() and 0 <= int(port) <= 65535),
            "[metrics] listen",
            '"host:port", e.g. "127.0.0.1:9464"',
        )
    t = r.table(raw, "telemetry", {"otlp_endpoint": str, "sample_ratio": float})
    telemetry = TelemetrySettings(
        otlp_endpoint=t.get("otlp_endpoint", "").rstrip("/"),
        sample_ratio=t.get("sample_ratio", 1.0),
    )
    if telemetry.otlp_endpoint:
        r.url(telemetry.otlp_endpoint, "[telemetry] otlp_endpoint")
    r.check(0 <= telemetry.sample_ratio <= 1, "[telemetry] sample_ratio", "from 0 to 1")
    return metrics, telemetry


def _billing(r: Reader, raw: Mapping[str, Any]) -> BillingSettings:
    from hubproxy.billing.prices import parse_variants
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
    if meter.url:
        r.url(meter.url, "[billing.meter] url")
    rates: list[RateSettings] = []
    amount_spec = {
        "model": str, "type": str, "input": (str, int, float), "output": (str, int, float),
        "cached_input": (str, int, float), "per_image": (str, int, float),
        "per_image_variants": dict, "per_1m_chars": (str, int, float),
        "per_second": (str, int, float), "per_mb": (str, int, float),
    }  # fmt: skip
    for i, entry in enumerate(b.get("rates", [])):
        where = f"billing.rates[{i}]"
        if not isinstance(entry, dict):
            r.problem(where, "a [[billing.rates]] table")
            continue
        e = r.table({where: entry}, where, amount_spec)
        provider, sep, model = str(e.get("model", "")).partition("/")
        r.check(bool(sep and provider and model), f"[{where}] model", '"provider/model"')
        r.check(
            e.get("type", "chat") in ("chat", "embedding", "image", "audio"),
            f"[{where}] type",
            '"chat", "embedding", "image" or "audio"',
        )
        variants = e.get("per_image_variants")
        try:
            for name in ("input", "output", "cached_input", *MEDIA_AMOUNTS):
                if name in e:
                    parse_amount(e[name], name)
            parse_variants(variants)
        except HubError as exc:
            r.problem(f"[{where}]", f"decimal credits: {exc}")
        rates.append(
            RateSettings(
                provider, model, e.get("type", "chat"), str(e.get("input", "0")),
                str(e.get("output", "0")),
                None if "cached_input" not in e else str(e["cached_input"]),
                str(e.get("per_image", "0")),
                None if variants is None else {str(k): str(v) for k, v in variants.items()},
                *(str(e.get(name, "0")) for name in MEDIA_AMOUNTS[1:]),
            )
        )  # fmt: skip
    return BillingSettings(
        mode=b.get("mode", "off"),
        default_max_tokens=b.get("default_max_tokens", 4096),
        rates=tuple(rates),
        meter=meter,
    )


def _provider(
    r: Reader, entry: Any, i: int, upstream: UpstreamSettings, secrets: bool
) -> ProviderSettings | None:
    """The provider of a [[providers]] table; None (with the problems noted) if it has no
    name or type to go by."""
    from hubproxy.providers import FORMATS  # late: providers import this module

    where = f"providers[{i}]"
    if not isinstance(entry, dict):
        r.problem(where, "a [[providers]] table")
        return None
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
    missing = [k for k in ("name", "type") if k not in p]
    for required in missing:
        r.problem(f"{where}.{required}", f'a {required}, e.g. {required} = "openai"')
    if missing:
        return None
    name, kind = p["name"], p["type"]
    where = f'providers "{name}"'
    r.check(bool(PROVIDER_NAME.match(name)), f"{where}.name", "lower-case letters, digits, . _ -")
    r.check(kind in FORMATS, f"{where}.type", "one of: " + ", ".join(sorted(FORMATS)))
    if kind != "fake":
        r.url(p.get("base_url", ""), f"{where}.base_url")
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
                r.problems.append(
                    f"{where}.api_key_env names ${var}, which is not set. "
                    f"Fix: export {var}=... before starting, or remove the provider."
                )
                continue
            keys.append(Secret(value))
        if kind != "fake" and not keys and not env_names:
            r.problem(f"{where}.api_key_env", 'a key: api_key_env = "NAME_OF_ENV_VAR"')
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


def _list(r: Reader, raw: Mapping[str, Any]) -> list[Any]:
    value = raw.get("providers", [])
    if not isinstance(value, list):
        r.problem("providers", "[[providers]] tables")
        return []
    return value


def _strings(r: Reader, value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problem(key, "a list of strings")
        return []
    return value


def _postgres_url(url: str) -> bool:
    try:
        return urlsplit(url).scheme in ("postgresql", "postgres")
    except ValueError:
        return False


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _env_int(r: Reader, name: str) -> int | None:
    value = _env(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        r.problems.append(f"${name}={value!r}: expected a whole number. Fix the variable.")
        return None
    return int(value)


def _env_float(name: str) -> float | None:
    value = _env(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number <= 3600:  # also refuses nan and inf
        raise ConfigError(f"${name}={value!r}: expected seconds, from 0 to 3600. Fix the variable.")
    return number
