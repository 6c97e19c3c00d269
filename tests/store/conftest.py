"""The store tests' fixtures: `store` runs a test on each backend (`pg_template` is the
session's, in tests/conftest.py)."""

from tests.store.backends import store

__all__ = ["store"]
