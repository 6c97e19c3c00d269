"""The model_calls table's writes: a call's start, its finish (the whole row), the sweep."""

from __future__ import annotations

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op

START = (
    "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
    "stream, status, trace_id, created_at, app_id, app_user, billing) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'processing', ?, ?, ?, ?, ?)"
)
# The whole row, so that it stands alone when the start never reached the database (the
# writer drops a start still queued when its finish comes). A call the stale sweep gave up on
# that finishes after all gets its real outcome; a finished row is never written twice.
_OUTCOME = (
    "status", "prompt_tokens", "completion_tokens", "total_tokens", "usage_estimated",
    "duration_ms", "ttfb_ms", "upstream_status", "error", "credits", "params", "attempts",
    "finished_at",
)  # fmt: skip
# A fallback moves a call to another target after its start was written.
_MOVED = ("provider", "model")
FINISH = (
    "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
    "stream, trace_id, created_at, app_id, app_user, billing, "
    + ", ".join(_OUTCOME)
    + ") VALUES ("
    + ", ".join("?" * (13 + len(_OUTCOME)))
    + ") ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _MOVED + _OUTCOME)
    + " WHERE model_calls.status = 'processing' OR model_calls.error LIKE 'stale: %'"
)
_SWEEP = (
    "UPDATE model_calls SET status = 'failed', error = ?, finished_at = ? "
    "WHERE status = 'processing' AND created_at < ?"
)


def sweep_op(older_than_ms: int, reason: str) -> Op:
    """Mark every call still `processing` that started before `older_than_ms` as failed."""
    return _SWEEP, (reason, now_ms(), older_than_ms)
