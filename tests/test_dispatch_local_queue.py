"""Dispatch without reading the pending queue: only after a pass drained it, only for this
replica's own submits, and never for long (passes driven by hand, no loops running)."""

from __future__ import annotations

import pytest

from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS
from worldpool.models import TaskSpec, TaskStatus
from worldpool.orchestrator import Orchestrator
from worldpool.testing import make_worker


class CountingBackend(MemoryBackend):
    """Counts pending-queue reads."""

    reads = 0

    async def list_pending(self, limit: int = 1000) -> list[str]:
        self.reads += 1
        return await super().list_pending(limit)


async def _setup() -> tuple[CountingBackend, Orchestrator, Orchestrator]:
    backend = CountingBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=16))
    here = Orchestrator(backend, FAST_SETTINGS, name="here")  # loops not started
    other = Orchestrator(backend, FAST_SETTINGS, name="other")  # another replica / process
    return backend, here, other


async def _status(backend: CountingBackend, task_id: str) -> TaskStatus:
    record = await backend.get_task(task_id)
    assert record is not None
    return record.status


async def test_own_submits_after_a_drained_pass_skip_the_queue_read() -> None:
    backend, here, _ = await _setup()
    first = await here.submit(TaskSpec(handler="noop"))
    assert await here.dispatch_once() == 1
    assert backend.reads == 1
    second = await here.submit(TaskSpec(handler="noop"))
    third = await here.submit(TaskSpec(handler="noop"))
    assert await here.dispatch_once() == 2
    assert backend.reads == 1, "the drained queue held only our submits: no read needed"
    for task in (first, second, third):
        assert await _status(backend, task.id) is TaskStatus.DISPATCHED
    assert await backend.list_pending() == []


@pytest.mark.parametrize("how", ["wake", "stale read"])
async def test_tasks_queued_elsewhere_are_dispatched_after_a_wake_or_a_periodic_read(
    how: str,
) -> None:
    backend, here, other = await _setup()
    await here.submit(TaskSpec(handler="noop"))
    await here.dispatch_once()  # drained
    foreign = await other.submit(TaskSpec(handler="noop"))
    mine = await here.submit(TaskSpec(handler="noop"))
    if how == "wake":
        here.wake()  # what `worldpool orchestrator` does on another process's submit
    else:
        here._queue_read_at -= 3600  # the last read is older than the idle interval
    assert await here.dispatch_once() == 2
    assert await _status(backend, foreign.id) is TaskStatus.DISPATCHED
    assert await _status(backend, mine.id) is TaskStatus.DISPATCHED


async def test_local_submits_keep_the_queue_order_by_priority() -> None:
    backend = CountingBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=1))
    here = Orchestrator(backend, FAST_SETTINGS, name="here")
    await here.dispatch_once()  # empty queue read: drained
    low = await here.submit(TaskSpec(handler="noop", priority=-5))
    high = await here.submit(TaskSpec(handler="noop", priority=5))
    assert await here.dispatch_once() == 1  # one slot: the higher priority goes first
    assert await _status(backend, high.id) is TaskStatus.DISPATCHED
    assert await _status(backend, low.id) is TaskStatus.PENDING
    assert await backend.list_pending() == [low.id]
