"""The metrics' label cache: client-chosen model names fold into `other`, and starting the
cache again (past its size) loses no count."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubproxy.gateway.record import Call
from hubproxy.providers.base import Usage
from hubproxy.telemetry import metrics as metrics_module
from hubproxy.telemetry.metrics import Metrics


def finished(model: str, status: str = "success") -> Call:
    call = Call.begin(
        request_id="r", user_id=1, api_key_id=1, provider="p", model=model, type="chat",
        stream=False, trace_id=None,
    )  # fmt: skip
    call.status, call.duration_ms, call.credits = status, 30, 7
    call.usage = Usage(prompt_tokens=3, completion_tokens=5)
    if status != "success":
        call.upstream_status = 503
    return call


def test_counts_survive_the_label_cache_starting_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "_MAX_LABELS", 4)
    m = Metrics(known=lambda provider, model: model == "known")
    try:
        for n in range(50):  # 25 names of their own, each seen twice: the cache restarts often
            m.settle(False, finished(f"client-name-{n % 25}"))
            m.settle(False, finished("known", "failed" if n % 10 == 0 else "success"))
        text = m.render().decode()
    finally:
        m.shutdown()
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "gen_ai_server_request_duration_seconds_count":
                key = (s.labels["gen_ai_request_model"], s.labels["error_type"], s.name)
                counts[key] = counts.get(key, 0) + s.value
            if s.name == "hubproxy_credits_debited_total":
                counts[(s.labels["gen_ai_request_model"], "", s.name)] = s.value
    duration = "gen_ai_server_request_duration_seconds_count"
    assert counts == {
        ("other", "", duration): 50,
        ("known", "", duration): 45,
        ("known", "503", duration): 5,
        ("other", "", "hubproxy_credits_debited_total"): 350,
        ("known", "", "hubproxy_credits_debited_total"): 350,
    }
