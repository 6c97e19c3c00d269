"""Background work: supervised tasks are logged, restarted with backoff, and stopped."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from structlog.testing import capture_logs

from hubproxy import tasks
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


async def test_an_unknown_key_looks_again_after_a_reload_that_began_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload under way read the revisions before the key was written; the request that
    brings the key must not be refused on that stale answer (a key made a moment ago works)."""
    revision = {"auth": 1}
    stalled = asyncio.Event()
    stalled.set()

    async def revisions(reader: object) -> dict[str, int]:
        seen = dict(revision)  # read now...
        await stalled.wait()  # ...answered later, while the reload is slow
        return seen

    monkeypatch.setattr(tasks.db, "revisions", revisions)
    reloaded: list[str] = []

    async def keys() -> None:
        reloaded.append("auth")

    follower = tasks.Follower(object(), {"auth": keys}, min_gap_s=0.0)
    await follower.refresh()  # at start: revision 1 is what the server has loaded
    stalled.clear()
    first = asyncio.ensure_future(follower.refresh())  # the background reload, started...
    await asyncio.sleep(0)
    revision["auth"] = 2  # ...before the CLI wrote the new key
    asking = asyncio.ensure_future(follower.on_unknown_key())
    await asyncio.sleep(0)
    stalled.set()
    await first
    assert await asyncio.wait_for(asking, 5) is True
    assert reloaded == ["auth", "auth"]  # at start, then the look that found revision 2


async def test_a_notification_reloads_after_a_reload_that_began_before_the_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A NOTIFY arrives while the poll's reload, which read the revisions before the change
    committed, is still under way: joining it would miss the change until the next poll."""
    revision = {"rates": 1}
    stalled = asyncio.Event()
    stalled.set()

    async def revisions(reader: object) -> dict[str, int]:
        seen = dict(revision)
        await stalled.wait()
        return seen

    monkeypatch.setattr(tasks.db, "revisions", revisions)
    reloaded: list[int] = []

    async def rates() -> None:
        reloaded.append(revision["rates"])

    follower = tasks.Follower(object(), {"rates": rates}, min_gap_s=0.0)
    await follower.refresh()
    stalled.clear()
    poll = asyncio.ensure_future(follower.refresh())
    await asyncio.sleep(0)
    revision["rates"] = 2  # committed after the poll read the revisions; its NOTIFY comes
    notified = asyncio.ensure_future(follower.refresh_after())
    await asyncio.sleep(0)
    stalled.set()
    await poll
    assert await asyncio.wait_for(notified, 5) == {"rates"}
    assert reloaded == [1, 2]  # at start, then after the notification


async def test_an_unknown_key_reloaded_while_it_waited_its_turn_is_looked_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The keys are reloaded (by a NOTIFY) while the caller waits out min_gap_s: the reload
    after that finds nothing new, yet the caller's key is there now."""
    revision = {"auth": 1}

    async def revisions(reader: object) -> dict[str, int]:
        return dict(revision)

    monkeypatch.setattr(tasks.db, "revisions", revisions)

    async def keys() -> None:
        pass

    follower = tasks.Follower(object(), {"auth": keys}, min_gap_s=0.2)
    await follower.refresh()
    asking = asyncio.ensure_future(follower.on_unknown_key())  # waits out the gap
    await asyncio.sleep(0.05)
    revision["auth"] = 2  # the key's commit, and its notification's reload
    assert await follower.refresh_after() == {"auth"}
    assert await asyncio.wait_for(asking, 5) is True
