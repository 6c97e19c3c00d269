"""The store tests' fixtures: `store` runs a test on each backend."""

from tests.store.backends import pg_template, store

__all__ = ["pg_template", "store"]
