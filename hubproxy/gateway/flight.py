"""A call in flight: admitted on entry, recorded and settled exactly once on every way out.

`async with Flight(...)` holds the call's credits (or refuses it) and starts its record. Every
way out of the block ends the call: success is said with `succeed()` (before the final bytes
are released), an error after the first byte with `fail()` (before the error event goes out),
and anything else (an exception raised anywhere, a client that left, a generator closed
early) is recorded as failed by `__aexit__`. A call is never left `processing` and a hold is
never left held: that is kept by construction, not by convention.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
import structlog

from hubproxy.billing import tokens
from hubproxy.billing.credits import Credits, Hold, Pending
from hubproxy.errors import HubError
from hubproxy.gateway.addons import Addon
from hubproxy.gateway.context import CallContext
from hubproxy.gateway.record import Call
from hubproxy.gateway.routing import Route
from hubproxy.providers.base import JSON, MediaUsage, StreamTranslator, Usage
from hubproxy.store import usage
from hubproxy.store.ops import Op, StoreWriter

CLIENT_GONE = "client disconnected"

log = structlog.get_logger("hubproxy.flight")


def failure(exc: BaseException) -> str:
    """What a call that ended in `exc` records as its error."""
    if isinstance(exc, HubError):
        return exc.message
    if isinstance(exc, asyncio.CancelledError | GeneratorExit | ConnectionResetError):
        return CLIENT_GONE  # the handler is cancelled, the stream closed, or a write fails
    return f"internal error: {type(exc).__name__}"


@dataclass(frozen=True, slots=True)
class Books:
    """Where calls are settled and recorded: credits in memory, rows and debits through the one
    writer, usage rollups beside them."""

    credits: Credits
    writer: StoreWriter
    rollups: usage.Rollups
    addons: tuple[Addon, ...] = ()
    instance: str = ""  # this instance's id, written on each call's row


class Flight:
    __slots__ = (
        "_books", "_ctx", "_kind", "_prompt", "_settled", "_stream", "_tickets", "body", "call",
        "hold",
        "media", "params", "route", "translator", "whole",
    )  # fmt: skip

    def __init__(
        self,
        books: Books,
        ctx: CallContext,
        *,
        route: Route,
        kind: str,
        stream: bool,
        body: JSON,
        media: MediaUsage | None = None,
        params: JSON | None = None,
    ) -> None:
        self._books = books
        self._ctx = ctx
        self._kind = kind
        self._stream = stream
        self.route = route
        self.body = body  # the request as sent upstream (OpenAI's or the provider's own shape)
        self.hold: Hold | None = None
        self.translator: StreamTranslator | None = None
        self.media = media  # known before the call (images asked for ...); the reply's after
        self.params = params  # the parameters that set the price, for the record
        self.whole: bytes | None = None  # a non-streamed answer, as the client gets it
        self._tickets: list[tuple[Addon, Any]] = []  # kept after settling: headers() reads them
        self._settled = False  # the addons have settled their tickets
        self._prompt: int | None = None  # the body's prompt estimate, made once
        self.call: Call  # set on entry

    async def __aenter__(self) -> Flight:
        ctx, route, books = self._ctx, self.route, self._books
        principal = ctx.principal
        # Admission may refuse (429, 403, 402): then nothing has started, and what the addons
        # admitted before the refusal is released.
        try:
            if books.addons:
                estimate = self.prompt_estimate() + books.credits.max_output(self.body, self._kind)
                for addon in books.addons:
                    self._tickets.append((addon, addon.admit(ctx, route, self._kind, estimate)))
            held = self._admit(principal.user_id, route, self.body)
            self.hold = await held.wait() if isinstance(held, Pending) else held
            self._held()
        except BaseException:
            if self.hold is not None:  # an addon refused the hold: release it
                books.credits.settle(self.hold, "(refused)", None)
                self.hold = None
            self._settle_addons(None)
            raise
        call = self.call = Call.begin(
            request_id=ctx.request_id,
            user_id=principal.user_id,
            api_key_id=principal.key_id,
            provider=route.provider,
            model=route.model,
            type=self._kind,
            stream=self._stream,
            trace_id=ctx.trace_id,
        )
        call.app_id, call.app_user, call.billing = ctx.app_id, ctx.app_user, ctx.billing
        call.instance = books.instance
        ctx.slot.call = call
        books.writer.submit(call.start_op(), key=call.id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.call.status != "processing":
            return
        if exc is None:  # a code path that forgot to say how the call ended
            log.error("call_without_outcome", call=self.call.id)
            exc = RuntimeError("the call ended without an outcome")
        elif not isinstance(exc, HubError | asyncio.CancelledError | GeneratorExit | OSError):
            log.error("call_failed_unexpectedly", call=self.call.id, exc_info=exc)
        done = self._record("failed", failure(exc))
        if not isinstance(exc, asyncio.CancelledError | GeneratorExit):
            # The handler goes on: wait for the record. A client that left is recorded without
            # waiting, since no bytes are left to release and its task is being torn down.
            await asyncio.gather(done, return_exceptions=True)

    async def retarget(self, route: Route, body: JSON) -> None:
        """Move the call to the next target of its fallback chain (nothing has reached the
        client yet): from now on it is held, billed and recorded at that target's rate. A
        hold the new rate does not fit in refuses the call (402) like any admission."""
        credits, call = self._books.credits, self.call
        if self.hold is not None:
            credits.settle(self.hold, call.id, None)  # released: nothing was consumed
            self.hold = None
        self.route, self.body, self._prompt = route, body, None
        held = self._admit(call.user_id or 0, route, body)
        self.hold = await held.wait() if isinstance(held, Pending) else held
        call.provider, call.model = route.provider, route.model
        call.attempts += 1
        call.sent = False
        call.upstream_status = None
        self._held()  # may refuse (403, 402): the new hold is released when the call ends

    def _admit(self, user_id: int, route: Route, body: JSON) -> Hold | Pending | None:
        """Hold for the call, or (a subscription pays for it) only price it for its record.
        A Pending (to await) only for a call that needs more than this instance's credit lease
        has: every other call is admitted without a suspension."""
        credits = self._books.credits
        if self._ctx.billing == "subscription":
            return credits.quote(user_id, route.provider, route.model, self._kind, body, self.media)
        return credits.admit(
            user_id, route.provider, route.model, self._kind, body,
            media=self.media, prompt_tokens=self.prompt_estimate(),
        )  # fmt: skip

    def prompt_estimate(self) -> int:
        """The body's prompt tokens as estimated (holds, limits, a cut stream's usage): the
        message tree is walked once per call, whoever asks."""
        if self._prompt is None:
            self._prompt = tokens.prompt(self.body)
        return self._prompt

    def headers(self) -> dict[str, str]:
        """Response headers the addons add (rate-limit state, for instance)."""
        out: dict[str, str] = {}
        for addon, ticket in self._tickets:
            out.update(addon.headers(ticket))
        return out

    async def succeed(self) -> None:
        """Record the call as a success; returns once it is committed."""
        await self._record("success", None)

    async def fail(self, exc: BaseException) -> None:
        """Record the call as failed (an error after the first byte); returns once committed."""
        await self._record("failed", failure(exc))

    def count(self, status: str) -> bool:
        """The call's usage: the provider's own if it gave one, else, when the upstream took the
        request and did not refuse it, an estimate rather than nothing (the prompt at least:
        the upstream worked on it, even if the client left before the first byte). True if
        the usage is an estimate."""
        call, translator = self.call, self.translator
        if translator is not None and translator.usage is not None:
            call.usage = translator.usage
        if call.usage is not None:
            return call.usage_estimated
        refused = call.upstream_status is not None and call.upstream_status >= 400
        if refused or not (status == "success" or call.ttfb_ms is not None or call.sent):
            return False
        chars, given = (
            (0, None)
            if translator is None
            else (
                translator.text_chars,
                translator.prompt_tokens,  # the input count, final if given
            )
        )
        prompt = self.prompt_estimate() if given is None else given
        call.usage = Usage(prompt, tokens.from_chars(chars))
        call.usage_estimated = True
        return True

    def _record(self, status: str, error: str | None) -> asyncio.Future[None]:
        """Finish the call and settle it, as one unit of writes: the row and the debit (which
        is also the meter's usage event) commit together or not at all."""
        call, books = self.call, self._books
        self.count(status)
        ops: list[Op] = []
        params = dict(self.params or {})
        if self.hold is not None:
            call.credits, ops = books.credits.settle(self.hold, call.id, call.usage, self.media)
            if self.hold.images:
                params["images"] = self.hold.images
        if params:
            call.params = orjson.dumps(params).decode()
        finish = call.finish(status, error=error)
        self._settle_addons(call)
        face_ops = self._ctx.face.ops
        if face_ops is not None and status == "success":
            ops.extend(face_ops(call, self.translator, self.whole))
        u = call.usage or Usage()
        books.rollups.add(
            created_at=call.created_at, user_id=call.user_id or 0,
            api_key_id=call.api_key_id or 0, provider=call.provider, model=call.model,
            failed=status == "failed", prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, credits=call.credits,
            duration_ms=call.duration_ms or 0, ttfb_ms=call.ttfb_ms,
        )  # fmt: skip
        # The finish is the whole row: a start still queued is dropped, not written first.
        return books.writer.record(finish, *ops, replaces=call.id)

    def _held(self) -> None:
        """Tell the addons that have a `held` hook the call's credit hold at its target."""
        for addon, ticket in self._tickets:
            held = getattr(addon, "held", None)
            if held is not None:
                held(ticket, self.route, self.hold)

    def _settle_addons(self, call: Call | None) -> None:
        if self._settled:
            return
        self._settled = True
        for addon, ticket in self._tickets:
            try:
                addon.settle(ticket, call)
            except Exception:  # an addon's bug must not cost the call its record
                log.exception("addon_settle_failed", addon=type(addon).__name__)
