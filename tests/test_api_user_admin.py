"""The user and admin HTTP APIs: own data only for members (BOLA), everyone's for admins,
paging, CSV export, credit grants, rates and bulk margins."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hubproxy.api import user as views
from hubproxy.api.state import CREDITS, RATES, WRITER
from hubproxy.billing.prices import Rate
from hubproxy.store.reports import CSV_FIELDS
from tests.conftest import Hub, HubFactory, add_key

BACKENDS = ("sqlite", "postgres")  # the hub tests run on both (tests/conftest.py)
MESSAGES = [{"role": "user", "content": "hi there"}]  # 9 prompt and 4 completion tokens
TRICKY = 'Bad "value", near: x\nline two, with a ""quote"" and a, comma'
FORMULA = '=HYPERLINK("http://evil.example","click")'
# The media prices every rate shows, unset (media rates: billing/prices.py).
NO_MEDIA = {"per_image_variants": None, "per_1m_chars": "0", "per_second": "0", "per_mb": "0"}
RATES_CONFIG = [
    {"model": "demo/echo", "input": "1", "output": "2"},
    {"model": "bad/tricky", "input": "1", "output": "1"},
    {"model": "bad/formula", "input": "1", "output": "1"},
]


@dataclass
class World:
    hub: Hub
    session: aiohttp.ClientSession
    root: str  # an admin's key
    bob: str  # a second member's key
    calls: dict[str, list[str]] = field(default_factory=dict)  # user -> call ids

    @property
    def alice(self) -> str:
        return self.hub.key

    async def api(
        self, method: str, path: str, key: str, *, json: Any = None, **params: str
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.hub.url + path, json=json, params=params,
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:  # fmt: skip
            raw = await resp.read()
            body = orjson.loads(raw) if resp.content_type == "application/json" else raw.decode()
            return resp.status, body

    async def ok(self, method: str, path: str, key: str, *, json: Any = None, **params: str) -> Any:
        status, body = await self.api(method, path, key, json=json, **params)
        assert status == 200, body
        return body

    async def flush(self) -> None:
        await self.hub.app[WRITER].flush()

    def ledger_rows(self) -> int:
        return int(self.hub.rows("SELECT count(*) FROM credit_ledger")[0][0])

    def db_balance(self, name: str) -> int:
        rows = self.hub.rows(
            "SELECT b.balance FROM credit_balances b JOIN users u ON u.id = b.user_id "
            "WHERE u.name = ?", name,
        )  # fmt: skip
        return int(rows[0][0]) if rows else 0


@pytest.fixture
async def tricky_upstream() -> AsyncIterator[str]:
    """An OpenAI-compatible upstream whose errors need CSV quoting (or defusing)."""

    async def chat(request: web.Request) -> web.Response:
        model = (await request.json())["model"]
        message = TRICKY if model == "tricky" else FORMULA
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": "x"}
        return web.json_response({"error": error}, status=400)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/v1"))
    await server.close()


@pytest.fixture
async def world(hub_factory: HubFactory, tricky_upstream: str) -> AsyncIterator[World]:
    """alice (member, the hub's key), bob (member) and root (admin), 10 credits granted to
    each member through the admin API, and some calls: alice 3 good and 2 failed, bob 2."""
    hub = await hub_factory(
        [
            {"name": "demo", "type": "fake", "models": ["echo"]},
            {"name": "bad", "type": "openai", "base_url": tricky_upstream, "api_key": "sk-x"},
        ],
        billing={"mode": "credits", "rates": RATES_CONFIG},
    )
    root, bob = add_key(hub.settings, "root", "admin"), add_key(hub.settings, "bob")
    async with aiohttp.ClientSession() as session:
        w = World(hub, session, root, bob)
        for name in ("alice", "bob"):
            await w.ok("POST", "/api/admin/credits", root, json={"user": name, "amount": "10"})
        for key, n in ((w.alice, 3), (w.bob, 2)):
            async with hub.openai(api_key=key) as client:
                for i in range(n):
                    if i == 1:
                        stream = await client.chat.completions.create(
                            model="demo/echo", messages=MESSAGES, stream=True
                        )
                        assert [c async for c in stream]
                    else:
                        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
        async with hub.openai() as client:
            for model in ("bad/tricky", "bad/formula"):
                with pytest.raises(openai.BadRequestError):
                    await client.chat.completions.create(model=model, messages=MESSAGES)
        await w.flush()
        for name in ("alice", "bob"):
            rows = hub.rows(
                "SELECT c.id FROM model_calls c JOIN users u ON u.id = c.user_id "
                "WHERE u.name = ? ORDER BY c.id DESC", name,
            )  # fmt: skip
            w.calls[name] = [r[0] for r in rows]
        yield w


async def walk(w: World, path: str, key: str, **params: str) -> list[dict[str, Any]]:
    """Every page of a calls listing, following next_cursor."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await w.ok("GET", path, key, **params, **({"cursor": cursor} if cursor else {}))
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert len(page["data"]) == int(params.get("limit", 50))


async def test_member_sees_only_own_balance_usage_and_calls(world: World) -> None:
    w = world
    balance = await w.ok("GET", "/api/user/balance", w.alice)
    spent = sum(c["credits"] for c in w.hub.calls() if c["id"] in w.calls["alice"])
    assert spent == 3 * (9 * 1 + 4 * 2)  # three good calls at 1 and 2 credits per 1M tokens
    assert balance == {
        "user": "alice", "balance": 10_000_000 - spent, "balance_credits": "9.999949",
        "held": 0, "held_credits": "0", "available": 10_000_000 - spent,
        "available_credits": "9.999949",
    }  # fmt: skip
    assert balance["balance"] == w.db_balance("alice")

    calls = await w.ok("GET", "/api/user/calls", w.alice)
    assert [c["id"] for c in calls["data"]] == w.calls["alice"] and calls["next_cursor"] is None
    assert {c["user"] for c in calls["data"]} == {"alice"}
    good = calls["data"][-1]
    assert good["model"] == "demo/echo" and good["status"] == "success"
    assert (good["prompt_tokens"], good["completion_tokens"], good["credits"]) == (9, 4, 17)
    assert good["credits_decimal"] == "0.000017" and good["created_at"].endswith("Z")
    assert set(good) == set(CSV_FIELDS)
    bobs = await w.ok("GET", "/api/user/calls", w.bob)
    assert [c["id"] for c in bobs["data"]] == w.calls["bob"]

    one = await w.ok("GET", f"/api/user/calls/{w.calls['alice'][0]}", w.alice)
    assert one == calls["data"][0]

    usage = await w.ok("GET", "/api/user/usage", w.alice)
    assert usage["user"] == "alice" and usage["group_by"] == "day"
    assert usage["totals"]["requests"] == 5 and usage["totals"]["errors"] == 2
    assert usage["totals"]["credits"] == spent
    by_model = await w.ok("GET", "/api/user/usage", w.bob, group_by="model")
    assert [(r["model"], r["requests"]) for r in by_model["data"]] == [("demo/echo", 2)]
    hourly = await w.ok("GET", "/api/user/usage", w.bob, group_by="hour", to="2999-01-01")
    assert hourly["data"] == [] and hourly["to"] == "2999-01-02T00:00:00.000Z"


async def test_bola_a_member_cannot_reach_another_users_data(world: World) -> None:
    w = world
    alices_call = w.calls["alice"][0]
    status, body = await w.api("GET", f"/api/user/calls/{alices_call}", w.bob)
    assert status == 404 and set(body["error"]) == {"message", "type", "param", "code"}
    status, unknown = await w.api("GET", "/api/user/calls/0123abcd", w.bob)
    assert status == 404  # someone else's call answers exactly like one that never was:
    assert body["error"] == {**unknown["error"], "message": f"No call with id '{alices_call}'."}
    assert (await w.api("GET", f"/api/admin/calls/{alices_call}", w.alice))[0] == 404

    for path in ("calls", "usage", "users", "rates", f"calls/{alices_call}"):
        status, body = await w.api("GET", f"/api/admin/{path}", w.bob, user="alice")
        assert status == 404 and body["error"]["code"] == "unknown_route", path
    status, _ = await w.api("GET", "/api/admin/calls", w.bob, format="csv")
    assert status == 404

    before, rows = await w.ok("GET", "/api/user/balance", w.bob), w.ledger_rows()
    status, _ = await w.api(
        "POST", "/api/admin/credits", w.bob, json={"user": "bob", "amount": "1000"}
    )
    assert status == 404
    assert await w.ok("GET", "/api/user/balance", w.bob) == before
    assert w.ledger_rows() == rows and w.db_balance("bob") == before["balance"]

    rates = w.hub.rows("SELECT * FROM model_rates ORDER BY model")
    body = {"rates": [{"model": "demo/echo", "input": "0", "output": "0"}]}
    assert (await w.api("PUT", "/api/admin/rates", w.bob, json=body))[0] == 404
    assert w.hub.rows("SELECT * FROM model_rates ORDER BY model") == rates
    assert w.hub.app[RATES].get("demo", "echo", "chat") == Rate.parse("1", "2")


async def test_admin_sees_everyone_with_filters_and_pages(world: World) -> None:
    w = world
    every = sorted(w.calls["alice"] + w.calls["bob"], reverse=True)
    for limit in ("1", "2", "3", "50"):
        seen = await walk(w, "/api/admin/calls", w.root, limit=limit)
        assert [c["id"] for c in seen] == every, limit
    mine = await walk(w, "/api/user/calls", w.alice, limit="2")
    assert [c["id"] for c in mine] == w.calls["alice"]

    bobs = await walk(w, "/api/admin/calls", w.root, user="bob", limit="1")
    assert [c["id"] for c in bobs] == w.calls["bob"]
    failed = await walk(w, "/api/admin/calls", w.root, status="failed")
    assert {c["model"] for c in failed} == {"bad/tricky", "bad/formula"}
    assert {c["error"] for c in failed} == {TRICKY, FORMULA}
    echo = await walk(w, "/api/admin/calls", w.root, model="demo/echo", user="alice")
    assert len(echo) == 3 and {c["stream"] for c in echo} == {True, False}
    assert await walk(w, "/api/admin/calls", w.root, model="demo/nope") == []
    assert await walk(w, "/api/admin/calls", w.root, **{"from": "2999-01-01"}) == []
    assert await walk(w, "/api/admin/calls", w.root, to="2000-01-01T00:00:00Z") == []
    newest = (await w.ok("GET", f"/api/admin/calls/{every[0]}", w.root))["created_at"]
    assert len(await walk(w, "/api/admin/calls", w.root, **{"from": newest})) >= 1
    since_2000 = await walk(w, "/api/admin/calls", w.root, **{"from": "946684800000"})
    assert len(since_2000) == len(every)

    usage = await w.ok("GET", "/api/admin/usage", w.root)
    assert usage["user"] is None and usage["totals"]["requests"] == len(every)
    bob = await w.ok("GET", "/api/admin/usage", w.root, user="bob", group_by="model")
    assert bob["user"] == "bob" and bob["totals"]["requests"] == 2

    users = (await w.ok("GET", "/api/admin/users", w.root))["data"]
    assert [(u["name"], u["role"], u["keys"]) for u in users] == [
        ("alice", "member", 1), ("root", "admin", 1), ("bob", "member", 1),
    ]  # fmt: skip
    for u in users:
        assert u["balance"] == w.db_balance(u["name"]) == u["available"]
    credits = [u["balance_credits"] for u in users]
    assert credits == ["9.999949", "0", "9.999966"]  # 10 less 3 (alice) or 2 (bob) calls at 17


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/api/admin/calls", {"status": "bogus"}, "status"),
        ("/api/admin/calls", {"limit": "0"}, "limit"),
        ("/api/admin/calls", {"limit": "501"}, "limit"),
        ("/api/admin/calls", {"limit": "ten"}, "limit"),
        ("/api/admin/calls", {"cursor": "../etc"}, "cursor"),
        ("/api/admin/calls", {"model": "echo"}, "model"),
        ("/api/admin/calls", {"from": "yesterday"}, "from"),
        ("/api/admin/calls", {"to": "2024-13-01"}, "to"),
        ("/api/admin/calls", {"from": "2024-05-02", "to": "2024-05-01"}, "from"),
        ("/api/admin/calls", {"stauts": "failed"}, "stauts"),
        ("/api/admin/calls", {"format": "xml"}, "format"),
        ("/api/admin/calls", {"format": "csv", "limit": "5"}, "limit"),
        ("/api/admin/usage", {"group_by": "week"}, "group_by"),
        ("/api/user/usage", {"from": "99999999999999999999"}, "from"),
        ("/api/user/calls", {"user": "bob"}, "user"),
    ],
)
async def test_bad_parameters_are_400(
    world: World, path: str, params: dict[str, str], param: str
) -> None:
    status, body = await world.api("GET", path, world.root, **params)
    assert status == 400, body
    assert body["error"]["param"] == param and body["error"]["type"] == "invalid_request_error"


async def test_unknown_user_filter_is_404(world: World) -> None:
    status, body = await world.api("GET", "/api/admin/calls", world.root, user="nobody")
    assert status == 404 and body["error"]["code"] == "user_not_found"


async def test_csv_export_parses_back_to_the_same_rows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    monkeypatch.setattr(views, "CSV_PAGE", 2)  # several pages, streamed one by one
    rows = await walk(w, "/api/admin/calls", w.root)
    async with w.session.get(
        w.hub.url + "/api/admin/calls", params={"format": "csv"},
        headers={"Authorization": f"Bearer {w.root}"},
    ) as resp:  # fmt: skip
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="')
        assert resp.headers["X-Request-Id"]
        text = (await resp.read()).decode()
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(parsed[0]) == CSV_FIELDS

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)

    expected = [{k: cell(row[k]) for k in CSV_FIELDS} for row in rows]
    for row in expected:  # a cell that a spreadsheet would run as a formula is defused
        if row["error"].startswith("="):
            row["error"] = "'" + row["error"]
    assert parsed == expected
    errors = {row["error"] for row in parsed}
    assert TRICKY in errors and "'" + FORMULA in errors

    only_bob = await w.api("GET", "/api/admin/calls", w.root, format="csv", user="bob")
    bob_rows = list(csv.DictReader(io.StringIO(only_bob[1], newline="")))
    assert [r["id"] for r in bob_rows] == w.calls["bob"]
    empty = await w.api("GET", "/api/admin/calls", w.root, format="csv", model="x/y")
    assert empty[1] == ",".join(CSV_FIELDS) + "\r\n"


async def test_credit_grants_refuse_fields_and_bad_amounts(world: World) -> None:
    w = world
    base = {"user": "alice", "amount": "5"}
    before, rows = await w.ok("GET", "/api/user/balance", w.alice), w.ledger_rows()
    for extra in ({"balance": "1000"}, {"role": "admin"}, {"user_id": 2}):
        status, body = await w.api("POST", "/api/admin/credits", w.root, json={**base, **extra})
        assert status == 422 and body["error"]["param"] == next(iter(extra)), body
    for amount in ("1.0000001", "abc", "-5", "0", "", None, True, [1], "1e400", "2000000000"):
        status, body = await w.api(
            "POST", "/api/admin/credits", w.root, json={**base, "amount": amount}
        )
        assert status == 400 and body["error"]["param"] == "amount", (amount, body)
    for bad in ({"kind": "debit"}, {"note": 5}):
        assert (await w.api("POST", "/api/admin/credits", w.root, json={**base, **bad}))[0] == 400
    status, body = await w.api("POST", "/api/admin/credits", w.root, json={**base, "user": "eve"})
    assert status == 404 and body["error"]["code"] == "user_not_found"
    assert await w.ok("GET", "/api/user/balance", w.alice) == before
    assert w.ledger_rows() == rows and w.db_balance("alice") == before["balance"]
    assert w.hub.rows("SELECT role FROM users WHERE name = 'alice'")[0][0] == "member"

    taken = await w.ok(
        "POST", "/api/admin/credits", w.root,
        json={"user": "alice", "amount": "-2.5", "kind": "adjustment", "note": "typo"},
    )  # fmt: skip
    assert taken["amount"] == -2_500_000 and taken["amount_credits"] == "-2.5"
    assert taken["balance"] == before["balance"] - 2_500_000 == w.db_balance("alice")
    back = await w.ok(
        "POST", "/api/admin/credits", w.root, json={"user": "alice", "amount": 1, "kind": "refund"}
    )
    assert back["balance"] == taken["balance"] + 1_000_000 == w.db_balance("alice")
    [last] = w.hub.rows(
        "SELECT kind, amount, note, source FROM credit_ledger ORDER BY id DESC LIMIT 1"
    )
    assert (last["kind"], last["amount"], last["note"]) == ("refund", 1_000_000, "")
    assert last["source"] == w.hub.app[CREDITS].source


async def test_rates_put_bills_the_next_call_at_the_new_rate(world: World) -> None:
    w = world
    listed = (await w.ok("GET", "/api/admin/rates", w.root))["data"]
    echo = next(r for r in listed if r["model"] == "demo/echo")
    assert (echo["input"], echo["output"], echo["cached_input"]) == ("1", "2", None)

    body = {"rates": [{"model": "demo/echo", "input": "10", "output": "20.5", "cached_input": "5"}]}
    out = await w.ok("PUT", "/api/admin/rates", w.root, json=body)
    assert out["applied"] is True and out["data"] == [
        {"model": "demo/echo", "type": "chat", "changed": True,
         "old": {"input": "1", "output": "2", "cached_input": None, "per_image": "0", **NO_MEDIA},
         "new": {"input": "10", "output": "20.5", "cached_input": "5", "per_image": "0",
                 **NO_MEDIA}},
    ]  # fmt: skip
    [row] = w.hub.rows("SELECT input, output, cached_input FROM model_rates WHERE model = 'echo'")
    assert tuple(row) == ("10", "20.5", "5")

    async with w.hub.openai() as client:
        await client.chat.completions.create(model="demo/echo", messages=MESSAGES)
    await w.flush()
    [call] = w.hub.rows("SELECT id, credits FROM model_calls ORDER BY id DESC LIMIT 1")
    assert call["credits"] == 9 * 10 + 4 * 20.5 == 172
    [debit] = w.hub.rows("SELECT amount FROM credit_ledger WHERE call_id = ?", call["id"])
    assert debit[0] == -172

    for bad, status in (
        ({"rates": [{"model": "demo/echo", "input": "1", "output": "1", "balance": 1}]}, 422),
        ({"rates": [], "role": "admin"}, 422),
        ({"rates": [{"model": "echo", "input": "1", "output": "1"}]}, 400),
        ({"rates": [{"model": "demo/echo", "input": "0.0000001", "output": "1"}]}, 400),
        ({"rates": [{"model": "demo/echo", "input": "1"}]}, 400),
        ({"rates": [{"model": "demo/echo", "input": "1e9", "output": "1"}]}, 400),
        ({"rates": [{"model": "demo/echo", "type": "video", "input": "1", "output": "1"}]}, 400),
        ({"rates": "all"}, 400),
    ):
        got, err = await w.api("PUT", "/api/admin/rates", w.root, json=bad)
        assert got == status, (bad, err)
    assert tuple(w.hub.rows("SELECT input, output FROM model_rates WHERE model = 'echo'")[0]) == (
        "10", "20.5",
    )  # fmt: skip


async def test_bulk_margin_dry_run_changes_nothing_and_the_run_writes_exact_rates(
    world: World,
) -> None:
    w = world
    unit = [
        {"model": "demo/echo", "input": "0.15", "output": "0.6", "cached_input": "0.075"},
        {"model": "demo/echo", "type": "embedding", "input": "0.02", "output": "0"},
    ]
    body = {"unit_costs": unit, "margin_percent": "20", "credit_price": "1", "dry_run": True}
    before = w.hub.rows("SELECT * FROM model_rates ORDER BY provider, model, type")
    dry = await w.ok("PUT", "/api/admin/rates", w.root, json=body)
    assert dry["dry_run"] is True and dry["applied"] is False
    new = {"input": "0.18", "output": "0.72", "cached_input": "0.09", "per_image": "0", **NO_MEDIA}
    assert dry["data"][0]["new"] == new and dry["data"][0]["old"]["input"] == "1"
    assert dry["data"][1] == {
        "model": "demo/echo", "type": "embedding", "old": None, "changed": True,
        "new": {"input": "0.024", "output": "0", "cached_input": None, "per_image": "0",
                **NO_MEDIA},
    }  # fmt: skip
    assert w.hub.rows("SELECT * FROM model_rates ORDER BY provider, model, type") == before
    assert w.hub.app[RATES].get("demo", "echo", "chat") == Rate.parse("1", "2")

    done = await w.ok("PUT", "/api/admin/rates", w.root, json={**body, "dry_run": False})
    assert done["applied"] is True and done["data"][0]["new"] == new
    [row] = w.hub.rows("SELECT * FROM model_rates WHERE model = 'echo' AND type = 'chat'")
    assert (row["input"], row["output"], row["cached_input"]) == ("0.18", "0.72", "0.09")
    assert w.hub.app[RATES].get("demo", "echo", "chat") == Rate(180_000, 720_000, 90_000)
    assert w.hub.app[RATES].get("demo", "echo", "embedding") == Rate(24_000, 0)

    # A price of half a unit per credit doubles the rate; a margin is never rounded away.
    half = {"unit_costs": [{"model": "demo/echo", "input": "0.0000001", "output": "0.15"}],
            "margin_percent": 20, "credit_price": "0.5", "dry_run": True}  # fmt: skip
    out = await w.ok("PUT", "/api/admin/rates", w.root, json=half)
    assert out["data"][0]["new"]["input"] == "0.000001"
    assert out["data"][0]["new"]["output"] == "0.36"
    again = await w.ok("PUT", "/api/admin/rates", w.root, json={**body, "dry_run": True})
    assert [d["changed"] for d in again["data"]] == [False, False]

    for bad, status in (
        ({**body, "margin_percent": None}, 400),
        ({**body, "credit_price": "0"}, 400),
        ({**body, "margin_percent": "-150"}, 400),
        ({**body, "margin_percent": "lots"}, 400),
        ({**body, "dry_run": "yes"}, 400),
        ({**body, "rates": []}, 422),
        ({**body, "balance": "1"}, 422),
    ):
        got, err = await w.api("PUT", "/api/admin/rates", w.root, json=bad)
        assert got == status, (bad, err)
