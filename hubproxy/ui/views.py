"""The dashboard's pages under /ui/: sign-in and sign-out, and the page shells (the data comes
from the JSON APIs, fetched by each page's script with the session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hubproxy.api.state import FOLLOWER, KEYS
from hubproxy.errors import Unauthorized
from hubproxy.gateway.auth import Principal
from hubproxy.ui import session as sessions

routes = web.RouteTableDef()

# Every page may only be framed by itself, runs only its own scripts and talks only to us.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    template: str
    title: str
    script: str
    admin: bool = False


PAGES = (
    Page("/ui/", "overview.html", "Overview", "overview.js"),
    Page("/ui/calls", "calls.html", "Calls", "calls.js"),
    Page("/ui/keys", "keys.html", "Keys", "keys.js"),
    Page("/ui/playground", "playground.html", "Playground", "playground.js"),
    Page("/ui/admin/users", "admin_users.html", "Users", "admin_users.js", admin=True),
    Page("/ui/admin/providers", "admin_providers.html", "Providers", "admin_providers.js", True),
    Page("/ui/admin/models", "admin_models.html", "Catalogue", "admin_models.js", admin=True),
    Page("/ui/admin/rates", "admin_rates.html", "Models and rates", "admin_rates.js", True),
    Page("/ui/admin/usage", "admin_usage.html", "Usage", "admin_usage.js", admin=True),
    Page("/ui/admin/availability", "admin_availability.html", "Availability",
         "admin_availability.js", admin=True),
)  # fmt: skip


def _redirect(location: str, status: int = 303) -> web.Response:
    """Returned, not raised: the edge renders raised HTTP errors as JSON, and the session
    middleware saves the cookie on what is returned."""
    return web.Response(status=status, headers={"Location": location})


def _secure_headers(response: web.StreamResponse) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    _secure_headers(response)
    return response


def _page_handler(page: Page) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        session, principal = await sessions.session_principal(request)
        if principal is None:
            return _redirect("/ui/login")
        context = {
            "user": principal,
            "csrf": sessions.csrf_token(session),
            "pages": [p for p in PAGES if principal.is_admin or not p.admin],
            "page": page,
        }
        if page.admin and not principal.is_admin:
            # Not theirs to discover: the same page as a path that does not exist.
            return _render(request, "not_found.html", {**context, "page": None}, status=404)
        return _render(request, page.template, context)

    return handler


for _page in PAGES:
    routes.get(_page.path)(_page_handler(_page))


@routes.get("/ui")
async def root(request: web.Request) -> web.StreamResponse:
    return _redirect("/ui/", status=308)


@routes.get("/ui/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    session, principal = await sessions.session_principal(request)
    if principal is not None:
        return _redirect("/ui/")
    return _render(request, "login.html", {"csrf": sessions.csrf_token(session), "error": None})


@routes.post("/ui/login")
async def login(request: web.Request) -> web.StreamResponse:
    """The pasted key, checked like any API call; a session names it by its hash only."""
    session, _ = await sessions.session_principal(request)
    form = await request.post()
    sent, key = form.get(sessions.CSRF_FIELD), form.get("key")
    if not sessions.csrf_ok(session, sent if isinstance(sent, str) else None):
        context = {"csrf": sessions.csrf_token(session), "error": "The form expired; try again."}
        return _render(request, "login.html", context, status=403)
    key = key.strip() if isinstance(key, str) else ""
    if await _principal_of(request, key) is None:
        context = {"csrf": sessions.csrf_token(session), "error": "That key is not valid."}
        return _render(request, "login.html", context, status=401)
    await sessions.sign_in(request, key)
    return _redirect("/ui/")


async def _principal_of(request: web.Request, key: str) -> Principal | None:
    """Whose key this is, as authenticate() sees it: a key made a moment ago works too."""
    if not key:
        return None
    headers = {"Authorization": f"Bearer {key}"}
    cache = request.app[KEYS]
    for attempt in range(2):
        try:
            return cache.authenticate(headers)
        except Unauthorized:
            if attempt or not await request.app[FOLLOWER].on_unknown_key():
                return None
    return None


@routes.post("/ui/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """Ends the session (the middleware has checked its CSRF token)."""
    session, principal = await sessions.session_principal(request)
    if principal is not None:
        session.invalidate()
    return _redirect("/ui/login")
