"""The pending queue owns "known empty": only a read that found nothing sets it, and
everything that queues a task (or may have) clears it."""

from __future__ import annotations

from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS
from worldpool.orchestrator.pending import PendingQueue

WINDOW_S = 60.0


async def _drained() -> tuple[MemoryBackend, PendingQueue]:
    backend = MemoryBackend(FAST_SETTINGS)
    queue = PendingQueue(backend)
    assert not queue.known_empty_since(WINDOW_S), "never read: not known"
    assert await queue.read(10) == []
    assert queue.known_empty_since(WINDOW_S) and not queue.backlog
    return backend, queue


async def test_a_read_that_finds_nothing_makes_it_known_empty_for_a_while() -> None:
    _, queue = await _drained()
    assert not queue.known_empty_since(0.0), "a read older than the window says nothing"


async def test_queueing_through_it_clears_known_empty_and_sets_the_backlog() -> None:
    backend, queue = await _drained()
    await queue.add("t1", priority=0)
    assert await backend.list_pending() == ["t1"]
    assert not queue.known_empty_since(WINDOW_S) and queue.backlog


async def test_a_create_or_a_wake_from_elsewhere_clears_known_empty() -> None:
    _, queue = await _drained()
    queue.queued()
    assert not queue.known_empty_since(WINDOW_S) and queue.backlog
    _, queue = await _drained()
    queue.maybe_queued_elsewhere()
    assert not queue.known_empty_since(WINDOW_S)


async def test_a_pass_that_leaves_tasks_queued_keeps_the_backlog() -> None:
    backend, queue = await _drained()
    for task_id in ("t1", "t2"):
        await backend.add_pending(task_id, 0)
    assert await queue.read(10) == ["t1", "t2"]
    assert not queue.backlog, "fewer than the limit read: no backlog yet"
    queue.still_queued()
    queue.pass_done(read=2, sent=1)
    assert queue.backlog and not queue.known_empty_since(WINDOW_S)


async def test_a_pass_that_sends_everything_it_read_leaves_it_known_empty() -> None:
    backend, queue = await _drained()
    await backend.add_pending("t1", 0)
    await queue.read(10)
    queue.still_queued()
    queue.pass_done(read=1, sent=1)
    assert not queue.backlog and queue.known_empty_since(WINDOW_S)
