"""The configuration: `load(path)` gives frozen Settings from TOML and HUBPROXY_* variables.

Modules: settings (the dataclasses), load (reading and checking, the only reader of
os.environ), reader (the checks that collect every problem with its fix).
"""

from hubproxy.config.load import load, locate, parse
from hubproxy.config.reader import ConfigError
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
)

__all__ = [
    "DEFAULT_CONFIG",
    "MEDIA_AMOUNTS",
    "PROVIDER_NAME",
    "AigneSettings",
    "AuthSettings",
    "BillingSettings",
    "ConfigError",
    "DatabaseSettings",
    "LimitsSettings",
    "LogSettings",
    "MeterSettings",
    "MetricsSettings",
    "ProviderSettings",
    "RateSettings",
    "ResponsesSettings",
    "Secret",
    "SecretsSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "TelemetrySettings",
    "UpstreamSettings",
    "load",
    "locate",
    "parse",
]
