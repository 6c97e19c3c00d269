"""schemathesis against a running hub with an owner's key, over every operation of its own
/openapi.json: no answer is a server error, and every answer matches the document (status,
content type, body). Bounded: a few examples per operation, no shrinking, a wall-clock cap."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hubproxy.app import start
from hubproxy.store import db
from tests.conftest import add_key, make_settings

EXAMPLES = 20  # per operation
BUDGET_S = 90.0  # the whole run; it takes about a third of that on a quiet 2-core machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A hub serving on its own event loop in a thread (schemathesis calls it synchronously).
    No master key, so no credential is ever stored (and probed); private upstreams allowed, so
    no base_url is looked up in DNS."""
    conf = make_settings(
        tmp_path,
        {
            "providers": [{"name": "demo", "type": "fake", "models": ["echo"]}],
            "security": {"allow_private_upstreams": True},
            "aigne": {"default_model": "demo/echo"},  # a call that names no model is answered
        },
    )
    add_key(conf)  # alice, a member
    root = add_key(conf, "root", "owner")
    c = db.connect(conf.database)
    try:  # out of reach of a generated DELETE /api/user/keys/{key_id}
        c.execute("UPDATE api_keys SET id = 987654321 WHERE label = 'test' AND user_id = "
                  "(SELECT id FROM users WHERE name = 'root')")  # fmt: skip
        c.commit()
    finally:
        c.close()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, port = asyncio.run_coroutine_threadsafe(start(conf, port=0), loop).result(30)
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    running: tuple[str, str],
) -> None:
    url, root = running
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 53
    headers = {"Authorization": f"Bearer {root}"}
    failures: list[str] = []
    seen: dict[str, list[int]] = {}  # the statuses of each operation's answers
    started = time.monotonic()
    bounded = settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    with requests.Session() as session:
        for operation in operations:
            if time.monotonic() - started > BUDGET_S:
                pytest.fail(f"over {BUDGET_S:g} s before {operation.label}")

            @bounded
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, headers=headers, session=session, timeout=10)
                seen.setdefault(case.operation.label, []).append(response.status_code)
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                run()
            except Exception as exc:  # every operation's failure, not just the first
                failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The calls reached the demo provider, so their answers were checked against the document
    # too, not only their refusals.
    for label in ("POST /api/v2/chat", "POST /api/v2/chat/completions"):
        assert 200 in seen[label], (label, seen[label])
