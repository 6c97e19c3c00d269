"""The tests' PostgreSQL: one throwaway cluster per session (tests/pgcluster.py). When no
server can be started, the tests that need one fail with the reason under CI (CI=true), and
are skipped with it elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pgcluster import Server, Unavailable, cluster

__all__ = ["Server", "pg_server"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    try:
        running = cluster()
        server = running.__enter__()
    except Unavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        running.__exit__(None, None, None)


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL is needed for these tests and {reason} (apt-get install postgresql)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
