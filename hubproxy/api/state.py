"""Typed application state: the AppKeys the handlers read their collaborators from."""

from __future__ import annotations

import aiosqlite
from aiohttp import web
from opentelemetry import trace

from hubproxy.auth import KeyCache
from hubproxy.config import Settings
from hubproxy.proxy import Gateway
from hubproxy.routing import Router
from hubproxy.tasks import KeyReloader

SETTINGS = web.AppKey("settings", Settings)
KEYS = web.AppKey("keys", KeyCache)
ROUTER = web.AppKey("router", Router)
GATEWAY = web.AppKey("gateway", Gateway)
READER = web.AppKey("reader", aiosqlite.Connection)
TRACER = web.AppKey("tracer", trace.Tracer)
KEY_RELOADER = web.AppKey("key_reloader", KeyReloader)
