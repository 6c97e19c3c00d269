"""The web dashboard at /ui/: server-rendered pages (Jinja2) with small ES modules that call
the same JSON APIs as any client, signed in by a session cookie. Exports setup(app)."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from hubproxy.config import Settings
from hubproxy.ui import session, views

HERE = Path(__file__).parent
STATIC = HERE / "static"


def setup(app: web.Application, settings: Settings) -> None:
    """Pages, static files, templates (autoescaped) and the session middlewares."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[aiohttp_jinja2.static_root_key] = "/ui/static"
    app.add_routes(views.routes)
    app.router.add_static("/ui/static", STATIC, name="ui-static")
    session.setup(app, settings)


__all__ = ["setup"]
