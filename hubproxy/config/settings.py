"""The settings: frozen dataclasses, one per config section, and Secret (never shown)."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hubproxy.telemetry import redact

DEFAULT_CONFIG = Path("config/hubproxy.toml")
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class Secret:
    """A credential that never shows itself in a repr, a log line or a traceback. Making one
    registers its value for redaction: scrub() blanks it from errors, rows and logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        redact.register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def database_url(value: str) -> Secret:
    """A database URL as a Secret; its password on its own is registered for redaction too
    (it can show up in a driver's error without the rest of the URL)."""
    try:
        password = urlsplit(value).password
    except ValueError:
        password = None
    if password:
        redact.register(password)
    return Secret(value)


def redacted_url(value: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        parts = urlsplit(value)
        if parts.password is None:
            return value
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}:***@" if parts.username else ":***@"
        return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))
    except ValueError:
        return "<a malformed URL>"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 20 * 1024 * 1024
    # The longest a client may take to send its request headers (or stay idle between two
    # requests on one connection), and then its body: a slow client cannot hold a connection.
    read_timeout_s: float = 30.0
    # SIGTERM: readiness fails at once, the listener closes after drain_grace_s, calls in
    # flight have until drain_s (from the signal) to finish, then are ended as `shutdown`.
    drain_grace_s: float = 2.0
    drain_s: float = 30.0
    # Several instances on one database: this one's id on its calls' rows and its heartbeat
    # row. Empty: "<hostname>:<port>", the same again after a restart (see instance_id).
    instance: str = ""
    heartbeat_s: float = 5.0  # how often the instance writes its heartbeat
    dead_after_s: float = 30.0  # an instance silent this long is dead: others fail its calls
    # SO_REUSEPORT: several instances on one host listen on one port, and the kernel spreads
    # connections between them (each still needs its own `instance` id).
    reuse_port: bool = False

    @property
    def instance_id(self) -> str:
        """`instance`, or "<hostname>:<port>": stable across restarts, so a restarted
        instance fails its own calls left `processing`, and no one else's."""
        return self.instance or f"{socket.gethostname()}:{self.port}"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    path: Path = Path("data/hubproxy.db")
    busy_timeout_ms: int = 5000
    stale_after_s: float = 1800.0  # a call still `processing` after this is marked failed
    sweep_interval_s: float = 60.0
    keep_calls_days: int = 0  # 0: keep every call; else older ones go to archive_dir
    archive_dir: Path | None = None  # default: archive/ beside the database file
    # postgresql://…: the store is PostgreSQL (path's directory then holds only this
    # instance's journal). None: SQLite at `path`.
    url: Secret | None = None

    @property
    def dialect(self) -> str:
        """ "postgres" when a url is set, else "sqlite"."""
        return "sqlite" if self.url is None else "postgres"

    def where(self) -> str:
        """The database, for messages and logs: the SQLite file, or the URL without its
        password."""
        return str(self.path) if self.url is None else redacted_url(self.url.reveal())


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
class MetricsSettings:
    """/metrics: on the main listener for a Bearer `token`, and/or on its own `listen`
    address ("host:port", no token asked there). Neither: off."""

    token: Secret | None = None
    listen: str = ""


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    otlp_endpoint: str = ""  # e.g. "http://collector:4318": spans go there (OTLP/HTTP)
    sample_ratio: float = 1.0


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


MEDIA_AMOUNTS = ("per_image", "per_1m_chars", "per_second", "per_mb")


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
    per_image_variants: dict[str, str] | None = None  # {"size/quality": credits}
    per_1m_chars: str = "0"
    per_second: str = "0"
    per_mb: str = "0"


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
class SecretsSettings:
    """The master key that seals provider credentials: $HUBPROXY_SECRET_KEY, else key_file.
    `new_key` ($HUBPROXY_NEW_SECRET_KEY) is only read by `hubproxy secrets rotate`."""

    key: Secret | None = None
    key_file: Path | None = None
    new_key: Secret | None = None


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    allow_private_upstreams: bool = False  # lifts the SSRF guard (Ollama, vLLM on purpose)


@dataclass(frozen=True, slots=True)
class AigneSettings:
    """AIGNE Hub's faces: the model a v2 chat names none of, where to send a caller who must
    pay (buy credits or subscribe), and the secret the payment system signs its webhook with
    ($HUBPROXY_AIGNE_WEBHOOK_SECRET, else webhook_secret; none: the webhook accepts nothing)."""

    default_model: str = "openai/gpt-5-mini"
    payment_link: str = ""
    webhook_secret: Secret | None = None


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Default rate limits of every key and every user (per minute, and at once); 0: none.
    `hubproxy keys limit` and `hubproxy users limit` override them one by one."""

    key_rpm: int = 0
    key_tpm: int = 0
    key_concurrency: int = 0
    user_rpm: int = 0
    user_tpm: int = 0
    user_concurrency: int = 0


@dataclass(frozen=True, slots=True)
class ResponsesSettings:
    # Stored Responses API answers (previous_response_id, GET /v1/responses/{id}) older than
    # this are pruned daily; 0 keeps them until deleted. OpenAI keeps its own for 30 days.
    keep_days: int = 30


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
    secrets: SecretsSettings = SecretsSettings()
    security: SecuritySettings = SecuritySettings()
    aigne: AigneSettings = AigneSettings()
    limits: LimitsSettings = LimitsSettings()
    responses: ResponsesSettings = ResponsesSettings()
    metrics: MetricsSettings = MetricsSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
