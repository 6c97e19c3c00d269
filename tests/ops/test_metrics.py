"""/metrics: the Prometheus text of OTel's instruments, counted per call, behind its token."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubproxy.api.state import CREDITS
from tests.conftest import Hub, HubFactory
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_billing import grant

TOKEN = "metrics-token-0123456789"


def samples(text: str) -> list[Any]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: list[Any], name: str, **labels: str) -> float:
    total = 0.0
    for s in found:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


async def scrape(hub: Hub, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(hub.url + "/metrics", headers=headers) as r:
        return r.status, await r.text()


async def test_counters_match_the_calls_made(hub_factory: HubFactory) -> None:
    providers = [
        {"name": "demo", "type": "fake", "models": ["echo"]},
        {"name": "free", "type": "fake"},  # no allow-list: any model name passes
    ]
    hub = await hub_factory(providers, metrics={"token": TOKEN})
    client = hub.openai()
    for _ in range(3):
        await client.chat.completions.create(
            model="demo/echo", messages=[{"role": "user", "content": "hello there"}]
        )
    stream = await client.chat.completions.create(
        model="demo/echo", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    async for _ in stream:
        pass
    for name in ("free/unlisted-1", "free/unlisted-2"):
        await client.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "x"}]
        )
    status, text = await scrape(hub)
    assert status == 200
    found = samples(text)
    calls = hub.calls()
    ok = sum(1 for c in calls if c["status"] == "success")
    assert value(found, "hubproxy_calls_total", status="success") == ok == 6
    model = {"gen_ai_provider_name": "demo", "gen_ai_request_model": "echo"}
    assert value(found, "gen_ai_server_request_duration_seconds_count", **model) == 4
    assert value(found, "gen_ai_server_time_to_first_token_seconds_count", **model) == 1
    prompt = sum(c["prompt_tokens"] for c in calls if c["model"] == "echo")
    completion = sum(c["completion_tokens"] for c in calls if c["model"] == "echo")
    tokens = "gen_ai_client_token_usage_sum"
    assert value(found, tokens, **model, gen_ai_token_type="input") == prompt
    assert value(found, tokens, **model, gen_ai_token_type="output") == completion
    assert value(found, "hubproxy_streams_active") == 0
    assert value(found, "hubproxy_http_requests_total", http_response_status_code="200") == 6
    assert value(found, "hubproxy_writer_batch_size_count") >= 1
    assert any(s.name == "hubproxy_writer_queue_depth" for s in found)
    assert any(s.name == "hubproxy_holds_outstanding" for s in found)
    # Names no catalogue lists never become labels of their own.
    assert not any("unlisted" in str(s.labels) for s in found)
    other = {"gen_ai_provider_name": "free", "gen_ai_request_model": "other"}
    assert value(found, "gen_ai_server_request_duration_seconds_count", **other) == 2


async def test_metrics_need_the_token_and_are_off_without_one(hub_factory: HubFactory) -> None:
    hub = await hub_factory(metrics={"token": TOKEN})
    assert (await scrape(hub, None))[0] == 401
    assert (await scrape(hub, "wrong"))[0] == 401
    off = await hub_factory()
    assert (await scrape(off))[0] == 404


async def test_rate_limit_refusals_are_counted(hub_factory: HubFactory) -> None:
    hub = await hub_factory(metrics={"token": TOKEN}, limits={"key_rpm": 2, "user_tpm": 50})
    client = hub.openai()
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.RateLimitError):  # may write more than 50 tokens: the user's tpm
        await client.chat.completions.create(model="demo/echo", messages=messages, max_tokens=100)
    for _ in range(2):
        await client.chat.completions.create(model="demo/echo", messages=messages, max_tokens=5)
    for _ in range(3):  # the key's rpm
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="demo/echo", messages=messages, max_tokens=5)
    found = samples((await scrape(hub))[1])
    assert value(found, "hubproxy_rate_limit_refusals_total", scope="key", limit="rpm") == 3
    assert value(found, "hubproxy_rate_limit_refusals_total", scope="user", limit="tpm") == 1
    assert value(found, "hubproxy_http_requests_total", http_response_status_code="429") == 4


SECONDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)


def buckets(found: list[Any], name: str, **labels: str) -> dict[float, float]:
    """The cumulative bucket counts of one series: upper bound → count."""
    return {
        float(s.labels["le"]): s.value
        for s in found
        if s.name == name + "_bucket" and all(s.labels.get(k) == v for k, v in labels.items())
    }


def expected(values: list[float], bounds: tuple[float, ...]) -> dict[float, float]:
    """Cumulative counts as OTel buckets them: a value equal to a bound is in its bucket."""
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[bisect_left(bounds, v)] += 1
    out, total = {}, 0
    for bound, n in zip((*bounds, float("inf")), counts, strict=True):
        total += n
        out[float(bound)] = total
    return out


async def test_histograms_and_credits_agree_with_the_rows(
    hub_factory: HubFactory, upstream: tuple[FakeOpenAI, str]
) -> None:
    hub = await hub_factory(
        [{"name": "up", "type": "openai", "base_url": upstream[1], "api_key": "sk-up-000000",
          "models": ["ok", "e500"]}],
        billing={"mode": "credits", "rates": [
            {"model": "up/ok", "input": "1", "output": "2"},
            {"model": "up/e500", "input": "1", "output": "1"},
        ]},
        metrics={"token": TOKEN},
    )  # fmt: skip
    grant(hub, "alice", "1")
    await hub.eventually(lambda: hub.app[CREDITS].balances.get(1) == 1_000_000)
    client = hub.openai()
    messages = [{"role": "user", "content": "count me"}]
    for _ in range(3):
        await client.chat.completions.create(model="up/ok", messages=messages)
    for _ in range(2):
        stream = await client.chat.completions.create(
            model="up/ok",
            messages=messages,
            stream=True,
        )
        async for _ in stream:
            pass
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="up/e500", messages=messages)
    found = samples((await scrape(hub))[1])
    rows = hub.calls()
    ok = [r for r in rows if r["status"] == "success"]
    assert len(ok) == 5 and len(rows) == 6
    model = {"gen_ai_provider_name": "up", "gen_ai_request_model": "ok"}
    duration = "gen_ai_server_request_duration_seconds"
    seconds = [r["duration_ms"] / 1000 for r in ok]
    assert buckets(found, duration, **model, error_type="") == expected(seconds, SECONDS)
    assert value(found, duration + "_sum", **model, error_type="") == pytest.approx(sum(seconds))
    failed = {"gen_ai_provider_name": "up", "gen_ai_request_model": "e500", "error_type": "500"}
    assert value(found, duration + "_count", **failed) == 1
    assert value(found, "hubproxy_calls_total", status="failed") == 1
    tokens = "gen_ai_client_token_usage"
    for kind, column in (("input", "prompt_tokens"), ("output", "completion_tokens")):
        counted = [float(r[column]) for r in ok]
        assert buckets(found, tokens, **model, gen_ai_token_type=kind) == expected(counted, TOKENS)
        assert value(found, tokens + "_sum", **model, gen_ai_token_type=kind) == sum(counted)
    ttft = [r["ttfb_ms"] / 1000 for r in ok if r["stream"]]
    assert len(ttft) == 2
    first = "gen_ai_server_time_to_first_token_seconds"
    assert buckets(found, first, **model) == expected(ttft, SECONDS)
    debited = sum(r["credits"] for r in rows)
    assert debited > 0
    assert value(found, "hubproxy_credits_debited_total", **model) == debited
    assert value(found, "hubproxy_credits_debited_total") == debited
    assert value(found, "hubproxy_streams_active") == 0
    assert value(found, "hubproxy_http_requests_total", http_response_status_code="200") == 5
