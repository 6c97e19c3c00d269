"""Background work: supervised tasks are logged, restarted with backoff, and stopped."""

from __future__ import annotations

import asyncio
import itertools

from structlog.testing import capture_logs

from hubproxy.tasks import Tasks


async def test_work_that_fails_is_restarted_with_growing_pauses() -> None:
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    finished = asyncio.Event()

    async def work() -> None:
        starts.append(loop.time())
        if len(starts) <= 3:
            raise ValueError("not a network error")
        finished.set()

    tasks = Tasks(first_backoff_s=0.02, max_backoff_s=1.0)
    tasks.spawn("flaky", work)
    await asyncio.wait_for(finished.wait(), 5)
    pauses = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4
    assert pauses[0] >= 0.02 and pauses[1] >= 0.04 and pauses[2] >= 0.08  # doubling
    await tasks.stop()


async def test_stop_ends_supervised_work() -> None:
    running = asyncio.Event()
    cancelled = False

    async def forever() -> None:
        nonlocal cancelled
        running.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled = True
            raise

    tasks = Tasks()
    task = tasks.spawn("forever", forever)
    await asyncio.wait_for(running.wait(), 5)
    await asyncio.wait_for(tasks.stop(), 5)
    assert cancelled and task.cancelled()


async def test_a_failure_is_logged_with_its_retry() -> None:
    done = asyncio.Event()
    calls = 0

    async def once_broken() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        done.set()

    tasks = Tasks(first_backoff_s=0.01)
    with capture_logs() as logs:
        tasks.spawn("logged", once_broken)
        await asyncio.wait_for(done.wait(), 5)
    await tasks.stop()
    assert calls == 2
    [failed] = [e for e in logs if e["event"] == "task_failed"]
    assert failed["task"] == "logged" and failed["retry_in_s"] == 0.01
    assert failed["log_level"] == "error"
