"""The model_calls table's writes: a call's start, its finish (the whole row), the sweeps."""

from __future__ import annotations

from hubproxy.store.clock import now_ms
from hubproxy.store.ops import Op

START = (
    "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
    "stream, status, trace_id, created_at, app_id, app_user, billing, instance_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'processing', ?, ?, ?, ?, ?, ?)"
)
# The whole row, so that it stands alone when the start never reached the database (the
# writer drops a start still queued when its finish comes). A call the stale sweep gave up on
# that finishes after all gets its real outcome; a finished row is never written twice.
_OUTCOME = (
    "status", "prompt_tokens", "completion_tokens", "total_tokens", "usage_estimated",
    "duration_ms", "ttfb_ms", "upstream_status", "error", "credits", "params", "attempts",
    "finished_at",
)  # fmt: skip
# The instance that started a call finishes it: instance_id is not among them.
# A fallback moves a call to another target after its start was written.
_MOVED = ("provider", "model")
FINISH = (
    "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
    "stream, trace_id, created_at, app_id, app_user, billing, instance_id, "
    + ", ".join(_OUTCOME)
    + ") VALUES ("
    + ", ".join("?" * (14 + len(_OUTCOME)))
    + ") ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _MOVED + _OUTCOME)
    + " WHERE model_calls.status = 'processing' OR model_calls.error LIKE 'stale: %'"
)
# A sweep's reason that starts with this lets the call's real finish still land.
STALE = "stale: "
_SWEEP = (
    "UPDATE model_calls SET status = 'failed', error = ?, finished_at = ? "
    "WHERE status = 'processing' AND created_at < ?"
)


def sweep_op(older_than_ms: int, reason: str) -> Op:
    """Mark every call still `processing` that started before `older_than_ms` as failed."""
    return _SWEEP, (reason, now_ms(), older_than_ms)


_FAIL_OWN = (
    "UPDATE model_calls SET status = 'failed', error = ?, finished_at = ? "
    "WHERE status = 'processing' AND instance_id IN (?, '')"
)


def fail_own_op(instance: str, reason: str) -> Op:
    """At an instance's start: its calls left `processing` by its previous run can never finish
    now. Rows from before instances were recorded ('') are taken as its own too."""
    return _FAIL_OWN, (reason, now_ms(), instance)


FAIL_OF = (
    "UPDATE model_calls SET status = 'failed', error = ?, finished_at = ? "
    "WHERE status = 'processing' AND instance_id = ?"
)


def fail_of_op(instance: str, reason: str) -> Op:
    """The calls of an instance gone silent (another instance runs this). `reason` starts with
    STALE: should that instance be alive after all, its calls' real finishes still land."""
    return FAIL_OF, (reason, now_ms(), instance)
