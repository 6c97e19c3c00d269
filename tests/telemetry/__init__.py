"""Tests of hubproxy/telemetry: redaction, the log pipeline, the sink."""
