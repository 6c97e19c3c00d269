"""Typed application state: the AppKeys the handlers read their collaborators from."""

from __future__ import annotations

from aiohttp import web

from hubproxy.billing.credits import Credits, RateBook
from hubproxy.catalog.live import LiveCatalog
from hubproxy.config import Settings
from hubproxy.gateway.auth import KeyCache
from hubproxy.gateway.core import Gateway
from hubproxy.gateway.drain import Drain
from hubproxy.gateway.instances import Instance
from hubproxy.limits import Budgets, RateLimits
from hubproxy.store.backend import Store
from hubproxy.store.ops import StoreWriter
from hubproxy.store.reader import Reader
from hubproxy.tasks import Follower
from hubproxy.telemetry.metrics import Metrics
from hubproxy.telemetry.setup import Tracing

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", KeyCache)
CATALOG = web.AppKey("catalog", LiveCatalog)
GATEWAY = web.AppKey("gateway", Gateway)
READER: web.AppKey[Reader] = web.AppKey("reader")
STORE = web.AppKey("store", Store)  # the backend: its dialect; on PostgreSQL its url and pool
TRACING: web.AppKey[Tracing] = web.AppKey("tracing")
FOLLOWER = web.AppKey("follower", Follower)
CREDITS = web.AppKey("credits", Credits)
RATES = web.AppKey("rates", RateBook)
WRITER: web.AppKey[StoreWriter] = web.AppKey("writer")
LIMITS = web.AppKey("limits", RateLimits)
BUDGETS = web.AppKey("budgets", Budgets)
DRAIN = web.AppKey("drain", Drain)
METRICS = web.AppKey("metrics", Metrics)
INSTANCE = web.AppKey("instance", Instance)  # its on_dead hooks: see gateway/instances.py
