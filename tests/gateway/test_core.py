"""The gateway core with no server: a scripted transport, a real writer, real credits.

Settlement by construction: whatever breaks, wherever, and whenever the face stops reading,
the call is recorded exactly once and its hold released.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson
import pytest

from hubproxy.billing import prices
from hubproxy.billing.credits import Credits, RateBook
from hubproxy.catalog.health import Health
from hubproxy.catalog.snapshot import Catalog
from hubproxy.catalog.snapshot import build as build_catalog
from hubproxy.config import DatabaseSettings, ProviderSettings, Secret
from hubproxy.errors import HubError
from hubproxy.gateway.auth import Principal
from hubproxy.gateway.context import OPENAI, CallContext, End, Face, Head, Part, Whole
from hubproxy.gateway.core import Gateway
from hubproxy.gateway.flight import Books
from hubproxy.gateway.transport import NotSent, Outbound, Response
from hubproxy.gateway.upstream import Upstream, Upstreams
from hubproxy.providers import make
from hubproxy.providers.base import Usage
from hubproxy.store import db, usage
from hubproxy.store.catalog import Rows
from hubproxy.store.migrate import migrate
from hubproxy.store.writer import Writer

ALICE = Principal(user_id=1, user_name="alice", role="member", key_id=1)
WORDS = ["Hel", "lo", " there"]


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + orjson.dumps({"id": "c1", "choices": [choice], **extra}) + b"\n\n"


STREAM = [
    chunk({"role": "assistant", "content": ""}),
    *(chunk({"content": w}) for w in WORDS),
    chunk({}, "stop"),
    b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3}}\n\n',
    b"data: [DONE]\n\n",
]
WHOLE = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }
)


class Scripted:
    """A Response that plays back chunks, then fails if told to."""

    def __init__(self, status: int, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.status = status
        self.headers: dict[str, str] = {}
        self._chunks = list(chunks)
        self._fail = fail
        self.closed = False

    async def readany(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._fail is not None:
            raise self._fail
        return b""

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    def close(self) -> None:
        self.closed = True


class ScriptedTransport:
    def __init__(self, answer: Callable[[], Response]) -> None:
        self.answer = answer
        self.sent: list[Outbound] = []

    async def send(self, request: Outbound) -> Response:
        self.sent.append(request)
        return self.answer()


class Live:
    """The catalogue as the core reads it, without a database."""

    def __init__(self, current: Catalog) -> None:
        self.current = current
        self.health = Health()


class Core:
    def __init__(self, gateway: Gateway, conn: sqlite3.Connection, credits: Credits) -> None:
        self.gateway = gateway
        self.conn = conn
        self.credits = credits

    async def rows(self) -> list[sqlite3.Row]:
        await self.gateway.books.writer.flush()
        return self.conn.execute("SELECT * FROM model_calls").fetchall()

    def debits(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT amount FROM credit_ledger")]


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Callable[[ScriptedTransport], Core]]:
    settings = DatabaseSettings(path=tmp_path / "hub.db")
    conn = db.connect(settings)
    migrate(conn)
    conn.execute("INSERT INTO users (name, role, created_at) VALUES ('alice', 'member', 0)")
    writer = Writer(db.connect(settings))
    writer.start()
    rates = RateBook()
    rates.replace(
        [{"provider": "up", "model": "m", "type": "chat", "input": "1", "output": "2"},
         {"provider": "second", "model": "m", "type": "chat", "input": "3", "output": "5"}]
    )  # fmt: skip
    credits = Credits("credits", rates, default_max_tokens=100, source="test")
    credits.load({1: 1_000_000}, 0)
    providers = [
        ProviderSettings(name=name, type="openai", base_url=f"http://{name}.invalid/v1",
                         api_keys=(Secret("sk-test-" + name),))
        for name in ("up", "second")
    ]  # fmt: skip

    def build(transport: ScriptedTransport, second: ScriptedTransport | None = None) -> Core:
        rows = Rows(aliases={"chain": ["up/m", "second/m"]})
        catalog = Live(build_catalog(rows, providers, None))
        upstreams = Upstreams(exempt_hosts=(), allow_private=False)
        for entry, t in zip(catalog.current.providers.values(), (transport, second), strict=True):
            upstreams._by_name[entry.name] = Upstream(entry, make(entry.settings()), t or transport)
        books = Books(credits, writer, usage.Rollups())
        return Core(Gateway(catalog, upstreams, books), conn, credits)

    yield build
    await writer.close()
    conn.close()


def context(stream: bool, face: Face = OPENAI, model: str = "up/m") -> CallContext:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return CallContext(request_id="r1", principal=ALICE, body=body, face=face)


async def collect(parts: AsyncIterator[Part]) -> list[Part]:
    return [part async for part in parts]


async def test_a_stream_yields_head_bytes_then_the_held_end_after_the_commit(core: Any) -> None:
    c: Core = core(ScriptedTransport(lambda: Scripted(200, STREAM)))
    parts = await collect(c.gateway.chat(context(stream=True)))
    assert isinstance(parts[0], Head) and isinstance(parts[-1], End)
    assert parts[-1].data == b"data: [DONE]\n\n"
    text = b"".join(p for p in parts if isinstance(p, bytes))
    assert all(w.encode() in text for w in WORDS) and b"[DONE]" not in text
    [row] = await c.rows()
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("success", 10, 3)
    cost = prices.cost(prices.Rate(1_000_000, 2_000_000), Usage(10, 3))
    assert row["credits"] == cost and c.debits() == [-cost]
    assert c.credits.held == {}


async def test_a_whole_answer_is_released_after_its_record(core: Any) -> None:
    c: Core = core(ScriptedTransport(lambda: Scripted(200, [WHOLE])))
    [part] = await collect(c.gateway.chat(context(stream=False)))
    assert isinstance(part, Whole) and orjson.loads(part.body)["usage"]["prompt_tokens"] == 10
    [row] = await c.rows()
    assert row["status"] == "success" and c.credits.held == {}


def breaking(where: str) -> Face:
    def boom(*_: Any) -> Any:
        raise RuntimeError(where)

    if where == "translator":
        return Face(stream=boom)
    return Face(reply=boom)


@pytest.mark.parametrize(("where", "stream"), [("translator", True), ("reply", False)])
async def test_a_raise_anywhere_records_the_call_and_releases_its_hold(
    core: Any, where: str, stream: bool
) -> None:
    response = Scripted(200, STREAM if stream else [WHOLE])
    c: Core = core(ScriptedTransport(lambda: response))
    with pytest.raises(RuntimeError, match=where):
        await collect(c.gateway.chat(context(stream=stream, face=breaking(where))))
    [row] = await c.rows()
    assert row["status"] == "failed" and row["error"] == "internal error: RuntimeError"
    assert c.credits.held == {} and response.closed


async def test_a_face_that_stops_reading_after_the_head_records_the_call(core: Any) -> None:
    response = Scripted(200, STREAM)
    c: Core = core(ScriptedTransport(lambda: response))
    async with aclosing(c.gateway.chat(context(stream=True))) as parts:
        assert isinstance(await anext(parts), Head)
        assert isinstance(await anext(parts), bytes)
    [row] = await c.rows()
    assert row["status"] == "failed" and row["error"] == "client disconnected"
    # It was sent and streaming: what was relayed is estimated and billed.
    assert row["usage_estimated"] == 1 and row["prompt_tokens"] > 0
    assert c.credits.held == {} and c.debits() and response.closed


async def test_a_generator_closed_before_it_started_holds_and_records_nothing(core: Any) -> None:
    transport = ScriptedTransport(lambda: Scripted(200, STREAM))
    c: Core = core(transport)
    parts = c.gateway.chat(context(stream=True))
    await parts.aclose()
    assert await c.rows() == [] and c.credits.held == {} and transport.sent == []


async def test_an_upstream_that_drops_mid_stream_ends_with_an_error_event(core: Any) -> None:
    cut = Scripted(200, STREAM[:3], fail=HubError("gone", code="upstream_disconnected"))
    c: Core = core(ScriptedTransport(lambda: cut))
    parts = await collect(c.gateway.chat(context(stream=True)))
    assert isinstance(parts[-1], End)
    assert orjson.loads(parts[-1].data.removeprefix(b"data: "))["error"]["message"] == "gone"
    [row] = await c.rows()
    assert row["status"] == "failed" and row["usage_estimated"] == 1
    assert c.credits.held == {}


async def test_a_request_that_never_left_costs_nothing(core: Any) -> None:
    def unreachable() -> Response:
        raise NotSent("Could not connect.", code="upstream_unreachable")

    c: Core = core(ScriptedTransport(unreachable))
    with pytest.raises(NotSent):
        await collect(c.gateway.chat(context(stream=False)))
    [row] = await c.rows()
    assert row["status"] == "failed" and row["prompt_tokens"] == 0 and row["credits"] == 0
    assert c.debits() == [] and c.credits.held == {}


# --- fallbacks between the targets of an alias -------------------------------------------------


def failing(status: int) -> Callable[[], Response]:
    body = orjson.dumps({"error": {"message": f"upstream {status}", "type": "x", "code": None}})
    return lambda: Scripted(status, [body])


def unreachable() -> Response:
    raise NotSent("Could not connect.", code="upstream_unreachable")


@pytest.mark.parametrize("first", [failing(500), failing(503), failing(429), unreachable])
async def test_a_failing_target_passes_the_call_to_the_next_before_the_first_byte(
    core: Any, first: Callable[[], Response]
) -> None:
    c: Core = core(ScriptedTransport(first), ScriptedTransport(lambda: Scripted(200, STREAM)))
    parts = await collect(c.gateway.chat(context(stream=True, model="chain")))
    assert isinstance(parts[0], Head) and parts[-1] == End(b"data: [DONE]\n\n")
    [row] = await c.rows()
    assert (row["status"], row["provider"], row["model"], row["attempts"]) == (
        "success",
        "second",
        "m",
        2,
    )
    # Billed at the rate of the target that answered: 10 × 3 + 3 × 5 millionths, rounded up.
    assert row["credits"] == prices.cost(prices.Rate(3_000_000, 5_000_000), Usage(10, 3))
    assert c.debits() == [-row["credits"]] and c.credits.held == {}
    assert c.gateway.catalog.health.view("up/m")["calls"] == 1


async def test_a_request_the_upstream_refuses_as_bad_is_not_tried_elsewhere(core: Any) -> None:
    second = ScriptedTransport(lambda: Scripted(200, STREAM))
    c: Core = core(ScriptedTransport(failing(400)), second)
    with pytest.raises(HubError) as refused:
        await collect(c.gateway.chat(context(stream=True, model="chain")))
    assert refused.value.status == 400 and second.sent == []
    [row] = await c.rows()
    assert (row["status"], row["provider"], row["attempts"]) == ("failed", "up", 1)


async def test_nothing_is_retried_after_the_first_byte(core: Any) -> None:
    cut = Scripted(200, STREAM[:3], fail=HubError("gone", code="upstream_disconnected"))
    second = ScriptedTransport(lambda: Scripted(200, STREAM))
    c: Core = core(ScriptedTransport(lambda: cut), second)
    parts = await collect(c.gateway.chat(context(stream=True, model="chain")))
    assert isinstance(parts[-1], End) and b"gone" in parts[-1].data and second.sent == []
    [row] = await c.rows()
    assert (row["status"], row["provider"], row["attempts"]) == ("failed", "up", 1)


async def test_the_last_targets_error_is_the_answer_when_every_target_fails(core: Any) -> None:
    c: Core = core(ScriptedTransport(failing(500)), ScriptedTransport(failing(503)))
    with pytest.raises(HubError) as failed:
        await collect(c.gateway.chat(context(stream=False, model="chain")))
    assert failed.value.status == 503
    [row] = await c.rows()
    assert (row["status"], row["provider"], row["attempts"]) == ("failed", "second", 2)
    assert c.credits.held == {} and c.debits() == []
