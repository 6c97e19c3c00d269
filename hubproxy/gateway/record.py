"""The ModelCall record: one row per call, started as `processing`, finished once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hubproxy.ids import random_hex
from hubproxy.providers.base import Usage
from hubproxy.store import calls
from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op


def new_id() -> str:
    """Sortable by time: 12 hex digits of milliseconds, then 16 random ones."""
    return f"{now_ms():012x}{random_hex(64)}"


@dataclass(slots=True)
class Call:
    """A call in flight. `finish` fills the outcome and returns the write that records it."""

    id: str
    request_id: str
    user_id: int | None
    api_key_id: int | None
    provider: str
    model: str
    type: str  # 'chat' | 'embedding' | 'image' | 'audio'
    stream: bool
    trace_id: str | None
    created_at: int
    started: float  # perf_counter at start
    status: str = "processing"
    usage: Usage | None = None
    usage_estimated: bool = False
    ttfb_ms: int | None = None
    duration_ms: int | None = None
    upstream_status: int | None = None
    sent: bool = False  # the request went upstream: it may be working on it
    attempts: int = 1  # targets tried: more than one when a fallback answered
    error: str | None = None
    credits: int = 0  # micro-credits debited
    params: str | None = None  # JSON of the parameters that set the price (image size ...)
    app_id: str | None = None  # the calling app's DID, when it said (AIGNE's faces)
    app_user: str | None = None  # a v1 app's end user (its DID)
    billing: str = "credits"  # or "subscription": credits recorded, not debited
    instance: str = ""  # the instance serving it ([server] instance)

    @classmethod
    def begin(
        cls,
        *,
        request_id: str,
        user_id: int | None,
        api_key_id: int | None,
        provider: str,
        model: str,
        type: str,
        stream: bool,
        trace_id: str | None,
    ) -> Call:
        return cls(
            new_id(), request_id, user_id, api_key_id, provider, model, type, stream,
            trace_id, now_ms(), time.perf_counter(),
        )  # fmt: skip

    def start_op(self) -> Op:
        return calls.START, (
            self.id, self.request_id, self.user_id, self.api_key_id, self.provider,
            self.model, self.type, int(self.stream), self.trace_id, self.created_at,
            self.app_id, self.app_user, self.billing, self.instance,
        )  # fmt: skip

    def first_byte(self) -> None:
        if self.ttfb_ms is None:
            self.ttfb_ms = round((time.perf_counter() - self.started) * 1000)

    def finish(self, status: str, *, error: str | None = None) -> Op:
        self.status = status
        self.error = error
        self.duration_ms = round((time.perf_counter() - self.started) * 1000)
        u = self.usage or Usage()
        return calls.FINISH, (
            self.id, self.request_id, self.user_id, self.api_key_id, self.provider,
            self.model, self.type, int(self.stream), self.trace_id, self.created_at,
            self.app_id, self.app_user, self.billing, self.instance, status, u.prompt_tokens,
            u.completion_tokens, u.total_tokens,
            int(self.usage_estimated), self.duration_ms, self.ttfb_ms, self.upstream_status,
            error, self.credits, self.params, self.attempts, now_ms(),
        )  # fmt: skip
