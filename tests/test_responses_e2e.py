"""The openai SDK's Responses API (responses.create, responses.stream) through hubproxy, end
to end: passed through to an OpenAI-type upstream, translated for Anthropic and Gemini.

The upstreams are the fakes of tests/fakes on loopback, speaking each provider's wire format
from captured data (OpenAI's own Responses stream among them). Every test goes through the
real app: the conversation state (previous_response_id) in the database, the usage and the
call log, billing when a client leaves mid-stream, and who may read a stored response.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai.types.responses import Response

from hubproxy.api.state import CREDITS
from hubproxy.app import start
from tests.conftest import Hub, HubFactory, add_key
from tests.e2e import JA_REPLY, JA_STREAM, provider, sdk, settled
from tests.fakes import anthropic_upstream as claude_fake
from tests.fakes import gemini_upstream as gemini_fake
from tests.fakes import openai_responses as openai_fake
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_billing import grant, ledger_agrees


@dataclass(frozen=True)
class Case:
    """One upstream: the model to ask, and what its fake answers (text, input and output
    tokens) whole and streamed, and the function call it makes (call id or None when the
    gateway makes one up, name, arguments)."""

    model: str
    whole: tuple[str, int, int]
    streamed: tuple[str, int, int]
    call: tuple[str | None, str, dict[str, Any]]
    streamed_call: tuple[str | None, str, dict[str, Any]]

    def answer(self, stream: bool) -> tuple[str, int, int]:
        return self.streamed if stream else self.whole


_OPENAI_CALL = (openai_fake.CALL[0], openai_fake.CALL[1], orjson.loads(openai_fake.CALL[2]))
CASES = {
    "openai": Case(
        "up/o4-mini",
        whole=(openai_fake.TEXT, 17, 122),
        streamed=(openai_fake.TEXT, 17, 122),
        call=_OPENAI_CALL,
        streamed_call=_OPENAI_CALL,
    ),
    "anthropic": Case(
        "claude/claude-text",
        whole=("Hi! My name is Claude.", 2095, 503),
        streamed=("Hello!", 25, 15),
        call=claude_fake.REPLY_TOOL,
        streamed_call=claude_fake.STREAM_TOOL,
    ),
    "gemini": Case(
        "gemini/gemini-ja",
        whole=(JA_REPLY, 75, 94),
        streamed=(JA_STREAM, 138, 15),
        call=(None, *gemini_fake.CALL),
        streamed_call=(None, *gemini_fake.CALL),
    ),
}
KINDS = list(CASES)
RATES = [
    {"model": m, "input": "1", "output": "1"}  # one micro-credit a token
    for m in ("up/gated", "claude/claude-text", "gemini/gemini-ja")
]


@pytest.fixture
async def hub(
    hub_factory: HubFactory,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
) -> Hub:
    return await hub_factory(
        [
            provider("up", "openai", upstream[1], "sk-upstream-key-000000000001"),
            provider("claude", "anthropic", claude.url + "/v1", claude_fake.KEY),
            provider("gemini", "gemini", gemini.url + "/v1beta", gemini_fake.KEY),
        ]
    )


async def ask(hub: Hub, model: str, stream: bool, **kw: Any) -> Response:
    """responses.create, or responses.stream read to its end: the final Response."""
    client = sdk(hub)
    if not stream:
        return await client.responses.create(model=model, max_output_tokens=100, **kw)
    async with client.responses.stream(model=model, max_output_tokens=100, **kw) as events:
        async for _ in events:
            pass
        return await events.get_final_response()


def upstream_requests(
    kind: str, fake: FakeOpenAI, claude: FakeAnthropic, gemini: FakeGemini
) -> list[Any]:
    """The bodies each fake received."""
    if kind == "openai":
        return [seen.body for seen in fake.requests]
    return [seen.body for seen in (claude if kind == "anthropic" else gemini).requests]


def said(kind: str, body: Any) -> str:
    """All the text an upstream request carries, to find earlier turns in it."""
    return orjson.dumps(body).decode() if kind != "openai" else orjson.dumps(body["input"]).decode()


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_is_a_response_with_the_upstreams_usage(
    hub: Hub, kind: str, stream: bool
) -> None:
    case = CASES[kind]
    text, input_tokens, output_tokens = case.answer(stream)
    got = await ask(hub, case.model, stream, input="hi there", instructions="Be brief.")
    assert got.status == "completed" and got.output_text == text
    assert got.usage is not None
    assert (got.usage.input_tokens, got.usage.output_tokens) == (input_tokens, output_tokens)
    assert got.usage.total_tokens == input_tokens + output_tokens
    [row] = await settled(hub)
    assert (row["status"], row["stream"], row["usage_estimated"]) == ("success", stream, 0)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (input_tokens, output_tokens)
    # Stored (store defaults to true), as the client got it.
    kept = await sdk(hub).responses.retrieve(got.id)
    assert kept.id == got.id and kept.output_text == text
    assert kept.usage is not None and kept.usage.input_tokens == input_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_conversation_continues_by_previous_response_id(
    hub: Hub,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
    kind: str,
    stream: bool,
) -> None:
    case = CASES[kind]
    first = await ask(hub, case.model, stream, input="My name is Ada.")
    second = await ask(hub, case.model, not stream, input="What is my name?",
                       previous_response_id=first.id)  # fmt: skip
    third = await ask(hub, case.model, stream, input="Say it again.",
                      previous_response_id=second.id)  # fmt: skip
    assert len({first.id, second.id, third.id}) == 3
    assert third.previous_response_id == second.id
    bodies = upstream_requests(kind, upstream[0], claude, gemini)
    assert len(bodies) == 3
    last = said(kind, bodies[-1])
    # The whole chain, oldest first, in the upstream's own request.
    marks = ["My name is Ada.", first.output_text, "What is my name?", second.output_text,
             "Say it again."]  # fmt: skip
    at = 0
    for mark in marks:
        at = last.find(orjson.dumps(mark).decode()[1:-1], at)
        assert at >= 0, (mark, last)
        at += 1
    if kind == "openai":
        assert "previous_response_id" not in bodies[-1], "the hub's id went upstream"
    rows = await settled(hub)
    assert [r["status"] for r in rows] == ["success"] * 3


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_function_tool_round_trip(
    hub: Hub,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
    kind: str,
    stream: bool,
) -> None:
    case = CASES[kind]
    call_id, name, arguments = case.streamed_call if stream else case.call
    tool = {"type": "function", "name": name, "description": "The weather now",
            "parameters": {"type": "object", "properties": {}}}  # fmt: skip
    first = await ask(hub, case.model, stream, input="Weather?", tools=[tool])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == name and orjson.loads(call.arguments) == arguments
    if call_id is not None:
        assert call.call_id == call_id
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "22 C, sunny"}
    second = await ask(hub, case.model, stream, input=[output], tools=[tool],
                       previous_response_id=first.id)  # fmt: skip
    assert second.output_text == case.answer(stream)[0]
    # The upstream got the call back with its result (each fake checks they match).
    assert "22 C, sunny" in said(kind, upstream_requests(kind, upstream[0], claude, gemini)[-1])
    if kind == "anthropic":
        assert [r["tool_use_id"] for r in claude.tool_results] == [call.call_id]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_client_that_leaves_mid_stream_is_billed_once(
    hub_factory: HubFactory,
    upstream: tuple[FakeOpenAI, str],
    claude: FakeAnthropic,
    gemini: FakeGemini,
    kind: str,
) -> None:
    fake = upstream[0]
    hub = await hub_factory(
        [
            provider("up", "openai", upstream[1], "sk-upstream-key-000000000001"),
            provider("claude", "anthropic", claude.url + "/v1", claude_fake.KEY),
            provider("gemini", "gemini", gemini.url + "/v1beta", gemini_fake.KEY),
        ],
        billing={"mode": "credits", "rates": RATES},
    )
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    model = "up/gated" if kind == "openai" else CASES[kind].model
    claude.hold_after = 4  # message_start, content_block_start, ping, the first text delta
    gemini.hold_after = 1  # the first event, with text
    holding = {"openai": fake.first_sent, "anthropic": claude.holding, "gemini": gemini.holding}
    body = {"model": model, "input": "hi there", "stream": True, "max_output_tokens": 50}
    async with aiohttp.ClientSession() as session, session.post(
        hub.url + "/v1/responses", json=body, headers={"Authorization": f"Bearer {hub.key}"}
    ) as r:  # fmt: skip
        assert r.status == 200
        seen = b""
        while b"response.output_text.delta" not in seen:
            seen += await asyncio.wait_for(r.content.readany(), 5)
        await asyncio.wait_for(holding[kind].wait(), 5)
        r.close()  # the client leaves while the upstream is mid-answer
    await hub.eventually(lambda: [r["status"] for r in hub.calls()] == ["failed"])
    [row] = hub.calls()
    assert (row["status"], row["error"]) == ("failed", "client disconnected")
    assert row["credits"] > 0 and row["credits"] == row["prompt_tokens"] + row["completion_tokens"]
    ledger_agrees(hub)
    debits = hub.rows("SELECT count(*) AS n FROM credit_ledger WHERE kind = 'debit'")
    assert debits[0]["n"] == 1
    assert hub.rows("SELECT count(*) AS n FROM responses")[0]["n"] == 0, "a failed call is kept"
    fake.release.set()
    claude.release.set()
    gemini.release.set()


async def events_of(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: "):
                out.append(orjson.loads(line[6:]))
    return out


async def post(hub: Hub, path: str, body: Any, key: str | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(
        hub.url + path, json=body, headers={"Authorization": f"Bearer {key or hub.key}"}
    ) as r:  # fmt: skip
        return r.status, await asyncio.wait_for(r.read(), 10)


async def test_an_error_mid_stream_is_response_failed(hub: Hub) -> None:
    body = {"model": "claude/claude-midstream", "input": "hi", "stream": True}
    status, raw = await post(hub, "/v1/responses", body)
    assert status == 200
    events = await events_of(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["content"][0]["text"] == "Hello"
    [row] = await settled(hub)
    assert row["status"] == "failed"
    assert hub.rows("SELECT count(*) AS n FROM responses")[0]["n"] == 0


async def test_a_member_cannot_read_delete_or_continue_anothers_response(hub: Hub) -> None:
    mine = await ask(hub, "up/o4-mini", False, input="secret plans")
    bob = hub.openai(api_key=add_key(hub.settings, "bob"), timeout=10.0)
    with pytest.raises(openai.NotFoundError):
        await bob.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        await bob.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError) as info:
        await bob.responses.create(model="up/o4-mini", input="go on", previous_response_id=mine.id)
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert (await sdk(hub).responses.retrieve(mine.id)).id == mine.id, "bob's delete did nothing"
    await sdk(hub).responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        await sdk(hub).responses.retrieve(mine.id)
    with pytest.raises(openai.BadRequestError):
        await sdk(hub).responses.create(
            model="up/o4-mini", input="go on", previous_response_id=mine.id
        )


async def test_store_false_keeps_nothing(hub: Hub) -> None:
    got = await ask(hub, "claude/claude-text", False, input="hi", store=False)
    assert got.store is False
    with pytest.raises(openai.NotFoundError):
        await sdk(hub).responses.retrieve(got.id)
    assert hub.rows("SELECT count(*) AS n FROM responses")[0]["n"] == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "claude/claude-text", "input": [{"type": "mystery"}]}, "input[0].type"),
        ({"model": "gemini/gemini-ja", "input": "hi", "tools": [{"type": "web_search"}]},
         "tools[0].type"),
        ({"model": "claude/claude-text", "input": "hi", "tool_choice": {"type": "file_search"}},
         "tool_choice.type"),
        ({"model": "claude/claude-text", "input": "hi",
          "previous_response_id": "resp_unknown"}, "previous_response_id"),
        ({"model": "up/o4-mini", "input": "hi", "previous_response_id": 7},
         "previous_response_id"),
        ({"model": "up/o4-mini"}, "input"),
        ({"model": "up/o4-mini", "input": 7}, "input"),
        ({"model": "up/o4-mini", "input": "hi", "store": "yes"}, "store"),
        ({"model": "claude/claude-text", "input": "hi", "text": {"format": {"type": "x"}}},
         "text.format.type"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_400_naming_the_field(hub: Hub, body: Any, param: str) -> None:
    status, raw = await post(hub, "/v1/responses", body)
    assert status == 400, raw
    assert orjson.loads(raw)["error"]["param"] == param
    assert all(r["status"] != "processing" for r in hub.calls())


async def test_hosted_tools_pass_through_to_openai(
    hub: Hub, upstream: tuple[FakeOpenAI, str]
) -> None:
    got = await sdk(hub).responses.create(
        model="up/o4-mini", input="news?", tools=[{"type": "web_search"}]
    )
    assert got.output_text == openai_fake.TEXT
    assert upstream[0].requests[-1].body["tools"] == [{"type": "web_search"}]
    assert upstream[0].requests[-1].path == "/v1/responses"


async def test_responses_older_than_keep_days_are_pruned(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await hub_factory(
        [provider("up", "openai", upstream[1], "sk-upstream-key-000000000001")],
        responses={"keep_days": 2},
    )
    old = await ask(hub, "up/o4-mini", False, input="old")
    new = await ask(hub, "up/o4-mini", False, input="new")
    conn = hub.db()  # commits what the server has journaled first
    conn.execute("UPDATE responses SET created_at = 0 WHERE id = ?", (old.id,))
    conn.close()
    runner, port = await start(hub.settings, port=0)  # a restart prunes, then daily
    try:
        again = Hub(f"http://127.0.0.1:{port}", hub.key, hub.settings, runner)
        with pytest.raises(openai.NotFoundError):
            await sdk(again).responses.retrieve(old.id)
        assert (await sdk(again).responses.retrieve(new.id)).id == new.id
    finally:
        await runner.cleanup()


async def test_an_upstream_without_usage_reports_the_recorded_estimate(hub: Hub) -> None:
    """The captured thinking stream carries no usage at all: response.completed, the stored
    response and the call log all say the same estimate."""
    got = await ask(hub, "claude/claude-thinking", True, input="gcd of 1071 and 462?")
    assert got.output_text == claude_fake.TEXT["stream_thinking.sse"]
    [row] = await settled(hub)
    assert (row["status"], row["usage_estimated"]) == ("success", 1)
    assert got.usage is not None and got.usage.output_tokens > 0
    counted = (row["prompt_tokens"], row["completion_tokens"])
    assert (got.usage.input_tokens, got.usage.output_tokens) == counted
    kept = await sdk(hub).responses.retrieve(got.id)
    assert kept.usage is not None
    assert (kept.usage.input_tokens, kept.usage.output_tokens) == counted


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event's type and place: what a client's accumulator relies on."""
    return [(e["type"], e.get("output_index"), e.get("content_index")) for e in events]


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_a_translated_stream_has_the_shape_of_openais_own(hub: Hub, kind: str) -> None:
    """Event by event as the captured OpenAI stream (its reasoning item left out), whatever
    the number of text deltas; sequence numbers count every event from 0."""
    captured = [
        obj
        for obj in await events_of(openai_fake.CAPTURED)
        if obj.get("output_index") != 0 and "reasoning" not in obj["type"]
    ]
    for obj in captured:
        if "output_index" in obj:
            obj["output_index"] -= 1

    def squeezed(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        out = shape(events)
        return [s for i, s in enumerate(out) if not (i and s == out[i - 1])]  # one delta run

    body = {"model": CASES[kind].model, "input": "hi", "stream": True}
    status, raw = await post(hub, "/v1/responses", body)
    assert status == 200
    ours = await events_of(raw)
    assert squeezed(ours) == squeezed(captured)
    assert [e["sequence_number"] for e in ours] == list(range(len(ours)))
    assert (
        "".join(e["delta"] for e in ours if e["type"].endswith(".delta"))
        == (CASES[kind].streamed[0])
    )


async def test_the_demo_answers_responses_too(hub_factory: HubFactory) -> None:
    hub = await hub_factory()  # the demo provider alone: it has no Responses API of its own
    got = await sdk(hub).responses.create(model="demo/echo", input="hello there")
    assert got.output_text == "You said: hello there"
    assert got.usage is not None and got.usage.output_tokens == 4
