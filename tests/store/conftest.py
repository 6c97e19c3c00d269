"""The store tests' fixtures: `store` runs a test on each backend (pg_template comes from
tests/conftest.py, once per session)."""

from tests.store.backends import store

__all__ = ["store"]
