"""Logs and traces, set up in one place: setup_logging (the pipeline is in logs.py) and
setup_tracing (traces.py)."""

from __future__ import annotations

from hubproxy.telemetry.logs import setup_logging
from hubproxy.telemetry.traces import Trace, Tracing, setup_tracing

__all__ = ["Trace", "Tracing", "setup_logging", "setup_tracing"]
