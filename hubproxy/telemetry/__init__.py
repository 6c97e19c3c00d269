"""Telemetry: structured logs with redaction, and traces (W3C propagation, optional spans)."""
