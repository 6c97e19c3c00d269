"""Telemetry: logs (structlog, the standard library routed through the same redacting
pipeline, written off the loop), the registry of secrets every output is scrubbed of, and
traces (W3C propagation, optional OpenTelemetry spans)."""
