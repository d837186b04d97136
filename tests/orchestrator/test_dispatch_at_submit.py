"""A submit sends its task itself (one backend call, no dispatch pass) only when the pending
queue is known to be empty and a worker can take it; otherwise the task is queued and
waits its turn (passes driven by hand, no loops running)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from worldpool.backends.base import DispatchOutcome, NewTask
from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS
from worldpool.errors import BackendError
from worldpool.models import EventKind, RoutingDecision, TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator
from worldpool.routing import PoolSnapshot, Router, RoutingContext
from worldpool.testing import make_worker


class CountingBackend(MemoryBackend):
    """Counts pending-queue reads and submit calls."""

    reads = 0
    creates = 0
    fail_creates = False

    async def list_pending(self, limit: int = 1000) -> list[str]:
        self.reads += 1
        return await super().list_pending(limit)

    async def create_tasks(self, items: list[NewTask]) -> list[DispatchOutcome]:
        self.creates += 1
        if self.fail_creates:
            raise BackendError("Redis went away")
        return await super().create_tasks(items)


async def _setup(slots: int = 16) -> tuple[CountingBackend, Orchestrator, Orchestrator]:
    backend = CountingBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=slots))
    here = Orchestrator(backend, FAST_SETTINGS, name="here")  # loops not started
    other = Orchestrator(backend, FAST_SETTINGS, name="other")  # another replica / process
    return backend, here, other


async def _status(backend: CountingBackend, task_id: str) -> TaskStatus:
    record = await backend.get_task(task_id)
    assert record is not None
    return record.status


async def test_a_submit_after_a_drained_pass_sends_the_task_itself() -> None:
    backend, here, _ = await _setup()
    first = await here.submit(TaskSpec(handler="noop"))
    assert first.status is TaskStatus.PENDING, "the queue was never read: queued"
    assert await here.dispatch_once() == 1
    assert backend.reads == 1

    second = await here.submit(TaskSpec(handler="noop"))

    assert second.status is TaskStatus.DISPATCHED and second.worker_id == "w1"
    assert second.decision is not None and second.decision.winner == "w1"
    assert await _status(backend, second.id) is TaskStatus.DISPATCHED
    assert (backend.reads, backend.creates) == (1, 2), "one call, no queue read"
    assert await backend.list_pending() == []
    kinds = [e.kind for e in await backend.read_events() if e.task_id == second.id]
    assert kinds == [EventKind.TASK_SUBMITTED, EventKind.TASK_DISPATCHED]
    [_, delivery] = await backend.receive("w1", 10)
    assert delivery.task_id == second.id


@pytest.mark.parametrize("how", ["wake", "stale read"])
async def test_tasks_queued_elsewhere_are_not_passed_by_after_a_wake_or_a_while(
    how: str,
) -> None:
    backend, here, other = await _setup()
    await here.dispatch_once()  # an empty queue read: known empty
    foreign = await other.submit(TaskSpec(handler="noop"))  # queued: `other` never read it
    if how == "wake":
        here.wake()  # what `worldpool serve` does on another process's submit
    else:
        here.pending._read_at -= 3600  # the last read is older than the idle interval
    mine = await here.submit(TaskSpec(handler="noop"))
    assert mine.status is TaskStatus.PENDING, "queued behind the foreign task"
    assert await here.dispatch_once() == 2
    assert await _status(backend, foreign.id) is TaskStatus.DISPATCHED
    assert await _status(backend, mine.id) is TaskStatus.DISPATCHED


async def test_without_a_free_slot_submits_queue_and_go_by_priority() -> None:
    backend, here, _ = await _setup(slots=1)
    await here.dispatch_once()
    running = await here.submit(TaskSpec(handler="noop"))
    low = await here.submit(TaskSpec(handler="noop", priority=-5))
    high = await here.submit(TaskSpec(handler="noop", priority=5))
    assert (running.status, low.status, high.status) == (
        TaskStatus.DISPATCHED,
        TaskStatus.PENDING,
        TaskStatus.PENDING,
    )

    assert await backend.release("w1", running.id)  # its slot comes back
    here.pool_view.mark_stale()  # (results would have said so)
    assert await here.dispatch_once() == 1

    assert await _status(backend, high.id) is TaskStatus.DISPATCHED
    assert await backend.list_pending() == [low.id]


async def test_a_slot_another_replica_took_sends_nothing_and_queues_the_task() -> None:
    backend, here, other = await _setup(slots=1)
    await here.dispatch_once()  # here's snapshot: one free slot
    theirs = await other.submit(TaskSpec(handler="noop"))
    assert await other.dispatch_once() == 1  # took it
    assert await _status(backend, theirs.id) is TaskStatus.DISPATCHED

    mine = await here.submit(TaskSpec(handler="noop"))

    assert mine.status is TaskStatus.PENDING
    assert await backend.list_pending() == [mine.id]
    assert [d.task_id for d in await backend.receive("w1", 10)] == [theirs.id]
    assert here.pool_view.stale, "the snapshot was wrong: re-read it"
    assert await here.dispatch_once() == 0  # still no slot, and nothing sent twice


async def test_serve_wakes_on_other_processes_submits_only() -> None:
    from worldpool.cli.serve import watch_submissions

    backend, here, other = await _setup()
    await here.dispatch_once()
    woken: list[int] = []
    here.wake = lambda: woken.append(1)  # type: ignore[method-assign]
    watcher = asyncio.create_task(watch_submissions(backend, here))
    try:
        await asyncio.sleep(0.05)
        mine = await here.submit(TaskSpec(handler="noop"))
        assert mine.status is TaskStatus.DISPATCHED
        await asyncio.sleep(0.2)
        assert woken == [], "its own submit is no news to this replica"
        await other.submit(TaskSpec(handler="noop"))
        for _ in range(50):  # bounded: the watcher wakes it within a read
            if woken:
                break
            await asyncio.sleep(0.02)
        assert woken, "another replica's submit wakes the dispatcher"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_a_failed_submit_assumes_nothing_was_sent() -> None:
    backend, here, _ = await _setup(slots=1)
    await here.dispatch_once()
    backend.fail_creates = True
    spec = TaskSpec(handler="noop")
    with pytest.raises(BackendError):
        await here.submit(spec)

    assert not here.knows(spec.id), "no record cached as sent"
    [worker] = here.pool_snapshot.workers
    assert worker.state.running == 0, "the slot taken locally is given back"
    assert here.pool_view.stale


async def test_a_routing_failure_at_submit_queues_the_task() -> None:
    class BrokenRouter(Router):
        def decide(self, ctx: RoutingContext, pool: PoolSnapshot) -> RoutingDecision:
            raise RuntimeError("a plugin's bug")

    backend = CountingBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=4))
    here = Orchestrator(backend, FAST_SETTINGS, name="here", router=BrokenRouter())
    await here.dispatch_once()

    record = await here.submit(TaskSpec(handler="noop"))

    assert record.status is TaskStatus.PENDING, "accepted and queued, not lost"
    assert await backend.list_pending() == [record.id]
