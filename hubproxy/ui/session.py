"""Dashboard sessions: the encrypted cookie, its key, and the middleware that lets a session
stand in for a hub key (checked against the key cache on every request, CSRF on every write)."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from functools import partial
from pathlib import Path

from aiohttp import web
from aiohttp_session import Session, get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hubproxy.api.middleware import SESSION_PRINCIPAL, SESSIONS, Handler
from hubproxy.api.state import KEYS
from hubproxy.config import Settings
from hubproxy.errors import Forbidden
from hubproxy.gateway.auth import Principal, hash_key, presented_key

COOKIE = "hubproxy_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MAX_AGE_S = 12 * 3600  # a session lasts half a day; the key behind it may end it sooner
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_FILE = "session.key"
_INFO = b"hubproxy dashboard session cookie v1"


def cookie_key(settings: Settings) -> bytes:
    """32 bytes for the cookie's encryption: derived (HKDF-SHA256) from the master key when one
    is set, else made at first start and kept beside the database, readable by its owner only."""
    master = settings.auth.secret_key
    if master is not None:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        return hkdf.derive(master.reveal().encode())
    return _stored_key(settings.database.path.parent / KEY_FILE)


def _stored_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = base64.urlsafe_b64decode(path.read_bytes().strip())
        if len(key) != 32:
            raise RuntimeError(f"{path}: not a session key; delete it to make a new one") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as out:
        out.write(base64.urlsafe_b64encode(key) + b"\n")
    return key


def is_https(request: web.Request) -> bool:
    """The browser's view: TLS here, or a proxy in front that says it terminated TLS."""
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return request.secure or forwarded.split(",")[0].strip().lower() == "https"


class CookieStorage(EncryptedCookieStorage):
    """Encrypted, HttpOnly, SameSite=Strict; Secure whenever the browser came over https."""

    def __init__(self, key: bytes) -> None:
        super().__init__(
            key, cookie_name=COOKIE, max_age=MAX_AGE_S, httponly=True, samesite="Strict"
        )

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        await super().save_session(request, response, session)
        morsel = response.cookies.get(COOKIE)
        if morsel is not None and is_https(request):
            morsel["secure"] = True


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: Session, sent: str | None) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and sent is not None and hmac.compare_digest(token, sent)


async def sign_in(request: web.Request, key: str) -> Session:
    """A fresh session (never the one the browser brought: no fixation) that names the key by
    its hash; the key itself is not kept."""
    session = await new_session(request)
    session["key_hash"] = hash_key(key)
    csrf_token(session)
    return session


async def session_principal(request: web.Request) -> tuple[Session, Principal | None]:
    """The session and whose it is, if its key is still active; a revoked key ends it."""
    session = await get_session(request)
    key_hash = session.get("key_hash")
    if not isinstance(key_hash, str):
        return session, None
    principal = request.app[KEYS].by_hash(key_hash)
    if principal is None:
        session.invalidate()
    return session, principal


@web.middleware
async def authenticate_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests that send no key but a session cookie are the session's, and a write must
    carry the session's CSRF token (header or form field) or is refused with 403."""
    if COOKIE in request.cookies and presented_key(request.headers) is None:
        session, principal = await session_principal(request)
        if principal is not None:
            if request.method not in SAFE_METHODS and not await _csrf_sent(request, session):
                raise Forbidden(
                    "Missing or wrong CSRF token: reload the page and try again.",
                    code="csrf_failed",
                )
            request[SESSION_PRINCIPAL] = principal
    return await handler(request)


async def _csrf_sent(request: web.Request, session: Session) -> bool:
    if csrf_ok(session, request.headers.get(CSRF_HEADER)):
        return True
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        field = form.get(CSRF_FIELD)
        return csrf_ok(session, field if isinstance(field, str) else None)
    return False


def setup(app: web.Application, settings: Settings) -> None:
    """The session layer, run by the edge (so that a refusal leaves as a JSON error) for the
    requests that can have a session: the cookie storage, then the session's caller."""
    storage = session_middleware(CookieStorage(cookie_key(settings)))

    async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await storage(request, partial(authenticate_session, handler=handler))

    app[SESSIONS] = sessions
