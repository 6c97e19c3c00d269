"""Bad requests get a clear error in OpenAI's shape, with the right status, and record nothing."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from tests.conftest import Hub, HubFactory, add_key


async def send(
    hub: Hub, method: str, path: str, data: bytes | None = None, key: bool = True
) -> tuple[int, dict[str, Any], CIMultiDict[str]]:
    headers = {"Authorization": f"Bearer {hub.key}"} if key else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, hub.url + path, data=data, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None), r.headers.copy()


def shaped(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "demo/echo"}', "messages"),
        (b'{"model": "demo/echo", "messages": []}', "messages"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "demo/echo", "messages": [{"role":"user","content":"x"}], "stream": "yes"}',
         "stream"),
    ],
)  # fmt: skip
async def test_malformed_chat_requests_are_400(hub: Hub, data: bytes, param: str | None) -> None:
    status, body, _ = await send(hub, "POST", "/v1/chat/completions", data)
    assert status == 400
    assert shaped(body)["param"] == param
    assert hub.calls() == []


async def test_embeddings_without_input_is_400(hub: Hub) -> None:
    status, body, _ = await send(hub, "POST", "/v1/embeddings", b'{"model": "demo/echo"}')
    assert status == 400 and shaped(body)["param"] == "input"


async def test_body_over_limit_is_413(hub_factory: HubFactory) -> None:
    hub = await hub_factory(server={"max_body_mb": 0.01})
    big = b'{"model": "demo/echo", "messages": [{"role": "user", "content": "' + b"x" * 20_000
    status, body, _ = await send(hub, "POST", "/v1/chat/completions", big + b'"}]}')
    assert status == 413 and shaped(body)["code"] == "request_too_large"
    assert hub.calls() == []


async def test_unknown_route_404_and_wrong_method_405(hub: Hub) -> None:
    status, body, _ = await send(hub, "GET", "/v1/nothing-here")
    assert status == 404 and shaped(body)["code"] == "unknown_route"
    status, body, headers = await send(hub, "GET", "/v1/chat/completions")
    assert status == 405 and shaped(body)["code"] == "method_not_allowed"
    assert headers["Allow"] == "POST"


async def test_every_answer_has_a_request_id(hub: Hub) -> None:
    _, _, headers = await send(hub, "GET", "/v1/nothing-here")
    assert len(headers["X-Request-Id"]) == 24


# --- fuzzed input that used to make 500s (issue #7) ------------------------------------------

DEEP = 300  # between orjson's dump limit (254) and its load limit (1024)
CHAT = b'{"model": "demo/echo", "messages": [{"role": "user", "content": %s}]}'
MESSAGES = b'{"model": "demo/echo", "max_tokens": 5, "messages": [{"role": "user", "content": %s}]}'


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def anthropic_shaped(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "error" and set(body) == {"type", "error"}
    assert set(body["error"]) == {"type", "message"} and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


BAD = [
    # (id, method, path, headers, body, who: member|admin, face: openai|anthropic)
    ("deep-json-chat", "POST", "/v1/chat/completions", {}, CHAT % nested(DEEP), "member", "openai"),
    ("deep-json-1024", "POST", "/v1/chat/completions", {}, CHAT % nested(1020), "member", "openai"),
    ("deep-json-dict", "POST", "/v1/chat/completions", {},
     CHAT % (b'{"a":' * DEEP + b"1" + b"}" * DEEP), "member", "openai"),
    ("deep-json-messages", "POST", "/v1/messages", {}, MESSAGES % nested(DEEP), "member",
     "anthropic"),
    ("deep-json-embeddings", "POST", "/v1/embeddings", {},
     b'{"model": "demo/echo", "input": %s}' % nested(DEEP), "member", "openai"),
    ("deep-json-admin", "PUT", "/api/admin/rates", {}, b'{"rates": %s}' % nested(DEEP), "admin",
     "openai"),
    ("bad-gzip", "POST", "/v1/chat/completions", {"Content-Encoding": "gzip"},
     b"this is not gzip", "member", "openai"),
    ("bad-deflate", "POST", "/v1/chat/completions", {"Content-Encoding": "deflate"},
     b"this is not deflate", "member", "openai"),
    ("bad-gzip-messages", "POST", "/v1/messages", {"Content-Encoding": "gzip"},
     b"\x1f\x8b\x08\x00garbage", "member", "anthropic"),
    ("limit-superscript", "GET", "/api/user/calls?limit=%C2%B2", {}, None, "member", "openai"),
    ("limit-arabic-digits", "GET", "/api/user/calls?limit=%D9%A1%D9%A2", {}, None, "member",
     "openai"),
    ("limit-5000-digits", "GET", "/api/user/calls?limit=" + "9" * 5000, {}, None, "member",
     "openai"),
    ("from-arabic-digits", "GET", "/api/user/usage?from=%D9%A1%D9%A2%D9%A3", {}, None, "member",
     "openai"),
    ("to-past-9999-ms", "GET", "/api/user/usage?to=253402300800000", {}, None, "member",
     "openai"),
    ("to-past-9999-offset", "GET", "/api/user/usage?to=9999-12-31T23:00:00-05:00", {}, None,
     "member", "openai"),
    ("to-year-10000", "GET", "/api/user/calls?to=10000-01-01", {}, None, "member", "openai"),
    ("to-past-9999-calls", "GET", "/api/user/calls?to=999999999999999", {}, None, "member",
     "openai"),
    ("to-past-9999-admin", "GET", "/api/admin/usage?to=253402300800000", {}, None, "admin",
     "openai"),
    ("from-past-9999-admin", "GET", "/api/admin/calls?from=300000000000000", {}, None, "admin",
     "openai"),
    ("amount-huge-exponent", "POST", "/api/admin/credits", {},
     b'{"user": "alice", "amount": "1e999999"}', "admin", "openai"),
    ("amount-big-exponent", "POST", "/api/admin/credits", {},
     b'{"user": "alice", "amount": "1e999990"}', "admin", "openai"),
    ("amount-5000-digits", "POST", "/api/admin/credits", {},
     b'{"user": "alice", "amount": "%s"}' % (b"9" * 5000), "admin", "openai"),
    ("rate-huge-exponent", "PUT", "/api/admin/rates", {},
     b'{"rates": [{"model": "demo/echo", "input": "1e999999", "output": "1"}]}', "admin",
     "openai"),
    ("margin-huge-exponent", "PUT", "/api/admin/rates", {},
     b'{"unit_costs": [{"model": "demo/echo", "input": "1e999990", "output": "1"}],'
     b' "margin_percent": "10"}', "admin", "openai"),
    ("margin-percent-huge", "PUT", "/api/admin/rates", {},
     b'{"unit_costs": [{"model": "demo/echo", "input": "1", "output": "1"}],'
     b' "margin_percent": "1e999999"}', "admin", "openai"),
]  # fmt: skip


@pytest.fixture
async def billed(hub_factory: HubFactory) -> tuple[Hub, str]:
    """The demo provider with billing on (chat and embeddings priced), and an admin's key."""
    rates = [
        {"model": "demo/echo", "input": "1", "output": "1"},
        {"model": "demo/echo", "type": "embedding", "input": "1", "output": "0"},
    ]
    hub = await hub_factory(billing={"mode": "credits", "rates": rates})
    root = add_key(hub.settings, "root", "admin")
    async with aiohttp.ClientSession() as s:
        grant = {"user": "alice", "amount": "100"}
        headers = {"Authorization": f"Bearer {root}"}
        async with s.post(hub.url + "/api/admin/credits", json=grant, headers=headers) as r:
            assert r.status == 200, await r.text()
    return hub, root


@pytest.mark.parametrize(
    ("method", "path", "headers", "data", "who", "face"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD],
)
async def test_fuzzed_input_is_a_4xx_in_the_face_shape(
    billed: tuple[Hub, str],
    method: str,
    path: str,
    headers: dict[str, str],
    data: bytes | None,
    who: str,
    face: str,
) -> None:
    hub, root = billed
    key = root if who == "admin" else hub.key
    started = time.monotonic()
    async with (
        aiohttp.ClientSession(auto_decompress=False) as s,
        s.request(
            method,
            hub.url + path,
            data=data,
            headers={"Authorization": f"Bearer {key}", "x-api-key": key,
                     "Content-Type": "application/json", **headers},
            skip_auto_headers=("Content-Encoding",),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as r,
    ):  # fmt: skip
        status, raw = r.status, await r.read()
    assert 400 <= status < 500, (status, raw[:300])
    body = orjson.loads(raw)
    (anthropic_shaped if face == "anthropic" else shaped)(body)
    assert time.monotonic() - started < 5, "bad input must not hold the event loop"


@pytest.mark.parametrize("messages", [b"5", b'{"a": [1]}', b'"text"', b"null"])
async def test_embeddings_with_a_stray_messages_field_is_a_400(
    billed: tuple[Hub, str], messages: bytes
) -> None:
    """#7.6: `messages` is no field of an embeddings request (it made the estimate that sets
    the hold fail with a 500): OpenAI's 400 for an unrecognized argument, nothing held or
    recorded."""
    hub, _ = billed
    data = b'{"model": "demo/echo", "input": "%s", "messages": %s}' % (b"word " * 40, messages)
    status, body, _ = await send(hub, "POST", "/v1/embeddings", data)
    assert status == 400, body
    shaped(body)
    assert body["error"]["param"] == "messages" and hub.calls() == []


# --- a small fuzz over every route ----------------------------------------------------------

FIELDS = ["model", "messages", "input", "stream", "max_tokens", "n", "role", "content", "user",
          "amount", "kind", "note", "rates", "unit_costs", "margin_percent", "credit_price",
          "dry_run", "type", "output", "system", "tools", "stream_options"]  # fmt: skip
PARAMS = ["from", "to", "limit", "cursor", "status", "model", "group_by", "user", "format"]
DIGIT_VALUES = [
    "0", "1", "50", "-1", "1e3", "9" * 30, "9" * 5000, "²", "١٢٣", "٣", "0x10", "",
    "253402300800000", "9999-12-31T23:00:00-05:00", "2024-02-30", "1970-01-01T00:00:00+01:00",
]  # fmt: skip
DIGITS = st.sampled_from(DIGIT_VALUES)
WORDS = ["demo/echo", "2024-05-01", "9999-12-31", "0001-01-01", "1e999999", "NaN", "csv", "day",
         "alice"]  # fmt: skip
TEXT = st.one_of(DIGITS, st.text(max_size=20), st.sampled_from(WORDS))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False), TEXT,
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner,
                        max_size=5),
    ),
    max_leaves=20,
)  # fmt: skip


# Bodies orjson cannot write: numbers past 64 bits, huge exponents, lone surrogates.
RAW = [
    b'{"model": "demo/echo", "max_tokens": 1%s}' % (b"0" * 40), b'{"amount": 1e999999}',
    b'{"n": -1e400}', b'{"model": "\\ud800"}', b'{"messages": [{"content": 1e-999}]}',
    b'{"model": "demo/echo", "messages": [{"role": "user", "content": %s}]}' % (b"[" * 300
    + b"]" * 300), b'{"model": "demo/echo", "input": "x", "messages": 7}',
]  # fmt: skip


def routes(hub: Hub) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, a sample id in place of a path variable."""
    out = []
    for route in hub.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method in ("GET", "POST", "PUT", "DELETE") and path:
            out.append((route.method, path.replace("{call_id}", "0123abcd")))
    return sorted(set(out))


FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


async def status_of(hub: Hub, key: str, method: str, path: str, **kw: Any) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, hub.url + path, headers=headers, timeout=timeout, **kw) as r,
    ):
        assert r.status < 500, (method, path, kw, await r.text())
        return r.status


async def test_no_query_parameter_value_makes_a_5xx(billed: tuple[Hub, str]) -> None:
    """Every known parameter of every GET route, one at a time, with each awkward value: a
    bounded product (one bad value among defaults is what reaches the parsers)."""
    hub, root = billed
    gets = [path for method, path in routes(hub) if method == "GET"]
    values = [*DIGIT_VALUES, *WORDS]
    async with aiohttp.ClientSession() as s:
        for path in gets:
            for name in PARAMS:
                for value in values:
                    async with s.get(
                        hub.url + path, params={name: value},
                        headers={"Authorization": f"Bearer {root}"},
                    ) as r:  # fmt: skip
                        assert r.status < 500, (path, name, value[:20], await r.text())


@FUZZ
@given(
    data=st.data(),
    params=st.dictionaries(st.sampled_from(PARAMS), st.one_of(DIGITS, TEXT), max_size=2),
    admin=st.booleans(),
)
async def test_no_query_makes_a_5xx(
    billed: tuple[Hub, str], data: st.DataObject, params: dict[str, str], admin: bool
) -> None:
    hub, root = billed
    gets = [(m, p) for m, p in routes(hub) if m == "GET"]
    method, path = data.draw(st.sampled_from(gets))
    await status_of(hub, root if admin else hub.key, method, path, params=params)


@FUZZ
@given(
    data=st.data(),
    body=st.one_of(
        st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6),
        JSON, st.binary(max_size=40), st.sampled_from(RAW),
    ),
    admin=st.booleans(),
)  # fmt: skip
async def test_no_body_makes_a_5xx(
    billed: tuple[Hub, str], data: st.DataObject, body: Any, admin: bool
) -> None:
    hub, root = billed
    writes = [(m, p) for m, p in routes(hub) if m in ("POST", "PUT")]
    method, path = data.draw(st.sampled_from(writes))
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    await status_of(hub, root if admin else hub.key, method, path, data=raw)
