"""The HubError hierarchy: every failure that leaves the process, with its status and wire shape."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from hubproxy.telemetry import redact


class HubError(Exception):
    """An error a client may see. Subclasses fix the HTTP status and the OpenAI error type."""

    status: int = 500
    type: str = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """OpenAI's error object: {"error": {"message", "type", "param", "code"}}."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.body())


class BadRequest(HubError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(HubError):
    status = 401
    type = "invalid_request_error"
    default_code = "invalid_api_key"


class PaymentRequired(HubError):
    status = 402
    type = "insufficient_quota"


class Forbidden(HubError):
    status = 403
    type = "permission_error"


class NotFound(HubError):
    status = 404
    type = "invalid_request_error"


class MethodNotAllowed(HubError):
    status = 405
    type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTimeout(HubError):
    """The client took longer than the server's read timeout to send its request."""

    status = 408
    type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLarge(HubError):
    status = 413
    type = "invalid_request_error"
    default_code = "request_too_large"


class Unprocessable(HubError):
    status = 422
    type = "invalid_request_error"


class RateLimited(HubError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class UpstreamError(HubError):
    """The upstream failed or answered something we cannot use."""

    status = 502
    type = "upstream_error"
    default_code = "bad_gateway"


class ServiceUnavailable(HubError):
    status = 503
    type = "server_error"
    default_code = "service_unavailable"


class GatewayTimeout(HubError):
    status = 504
    type = "upstream_error"
    default_code = "upstream_timeout"


_BY_STATUS: dict[int, type[HubError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        PaymentRequired,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        PayloadTooLarge,
        Unprocessable,
        RateLimited,
        UpstreamError,
        ServiceUnavailable,
        GatewayTimeout,
    )
}


def from_status(status: int, message: str, *, code: str | None = None) -> HubError:
    """The HubError for an HTTP status; statuses without a class of their own keep their number."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(message, code=code)
    # Keep e.g. 409 or 451 as the upstream said it.
    return (BadRequest if status < 500 else UpstreamError)(message, code=code, status=status)


def from_upstream(
    status: int,
    message: str,
    *,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> HubError:
    """The error a client sees for an upstream error answer, whatever the provider's format.

    Only a client mistake (400, 404, 413, 422 ...) keeps its status and the upstream's words,
    scrubbed of anything key-shaped: the client needs them to fix its request. Every other
    answer describes the gateway's own account (its keys, organisation, limits), so the client
    gets our words instead: a refused credential (401, 403) is 502; a rate limit stays 429;
    overload (503, 529) is 503; an upstream timeout 504; any other failure 502.
    """
    if status in (401, 403):
        return UpstreamError(
            "The upstream provider rejected the gateway's credentials.",
            code="upstream_auth_failed",
        )
    if status == 429:
        return RateLimited("The upstream provider is rate-limiting requests; retry later.")
    if status in (503, 529):
        return ServiceUnavailable("The upstream provider is overloaded; retry later.")
    if status == 504:
        return GatewayTimeout("The upstream provider timed out.")
    if status >= 500:
        return UpstreamError(
            f"The upstream provider failed with status {status}.", code="upstream_error"
        )
    err = from_status(
        status,
        scrub(message) or f"The upstream provider refused the request ({status}).",
        code=code,
    )
    err.param = param
    if type:
        err.type = type  # keep the upstream's own error type for a 4xx
    return err


def upstream_not_found(path: str) -> UpstreamError:
    """The upstream answered 404 for the URL itself (not for a model or another resource it
    knows): the provider's base_url is wrong, which is the operator's to fix, not the client's."""
    return UpstreamError(
        f"The provider answered 404 for {path}: check its base_url.",
        code="upstream_not_found",
    )


def provider_path(base_url: str, path: str) -> str:
    """The path an upstream answered for: `path` when the caller knows it, else the provider's
    base_url path (every endpoint of the provider lives under it)."""
    if path:
        return path
    base = urlsplit(base_url).path.rstrip("/")
    return f"{base}/…"


def scrub(text: str) -> str:
    """Blank every configured secret (by value) and anything key-shaped in text bound for a
    client, a log line or the database (see hubproxy.telemetry.redact)."""
    return redact.scrub(text)
