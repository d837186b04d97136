"""A backlog behind a big pool: once a task finds every fitting worker busy, the others of
its shape in the same pass wait without a routing decision each; other shapes, retries
and tasks with an affinity are still decided one by one."""

from __future__ import annotations

from typing import Any

import pytest

from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS, make_worker
from worldpool.models import Requirements, TaskSpec, TaskStatus
from worldpool.orchestrator import backlog, dispatch
from worldpool.orchestrator.core import Orchestrator


async def _orchestrator() -> tuple[MemoryBackend, Orchestrator, list[str]]:
    backend = MemoryBackend(FAST_SETTINGS)
    await backend.register(make_worker("busy", handlers=["noop"], max_concurrency=1))
    for i in range(20):  # free slots, but not for this handler
        await backend.register(make_worker(f"other-{i}", handlers=["other"], max_concurrency=4))
    orchestrator = Orchestrator(backend, FAST_SETTINGS)  # passes driven by hand
    decided: list[str] = []
    decide = orchestrator.router.decide

    def counting(ctx: Any, pool: Any, **kw: Any) -> Any:
        decided.append(ctx.task.id)
        return decide(ctx, pool, **kw)

    orchestrator.router.decide = counting  # type: ignore[method-assign]
    return backend, orchestrator, decided


async def test_a_pass_decides_once_per_shape_of_a_backlog() -> None:
    backend, orchestrator, decided = await _orchestrator()
    tasks = [await orchestrator.submit(TaskSpec(handler="noop")) for _ in range(30)]
    big = await orchestrator.submit(TaskSpec(handler="noop", requirements=Requirements(min_cpus=1)))
    decided.clear()

    assert await orchestrator.dispatch_once() == 1  # the one slot
    first_pass = list(decided)
    decided.clear()
    assert await orchestrator.dispatch_once() == 0  # the slot is taken

    # The first pass: the winner, then one decision that found the slot taken, then
    # the other shape; the second pass: one decision per shape.
    assert first_pass == [tasks[0].id, tasks[1].id, big.id]
    assert decided == [tasks[1].id, big.id]
    records = [await backend.get_task(t.id) for t in tasks]
    assert [r.status for r in records if r].count(TaskStatus.PENDING) == 29


async def test_affinities_are_decided_one_by_one() -> None:
    _, orchestrator, decided = await _orchestrator()
    await orchestrator.submit(TaskSpec(handler="noop"))
    await orchestrator.dispatch_once()
    sticky = [
        await orchestrator.submit(TaskSpec(handler="noop", affinity={"key": f"k{i}"}))
        for i in range(3)
    ]
    decided.clear()
    await orchestrator.dispatch_once()
    assert decided == [t.id for t in sticky]


async def test_a_pass_reads_the_queue_for_the_slots_its_handlers_can_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Free slots of workers lacking every queued handler do not make each pass read the
    whole queue; every DEEP_READ_S a pass reads for all of them, which finds a task of
    another handler further back."""
    monkeypatch.setattr(backlog, "DEEP_READ_S", 3600.0)  # no deep read but those forced
    backend, orchestrator, _ = await _orchestrator()
    reads: list[int] = []
    read = orchestrator.pending.read

    async def counted(limit: int) -> list[str]:
        reads.append(limit)
        return await read(limit)

    orchestrator.pending.read = counted  # type: ignore[method-assign]
    for _ in range(300):
        await orchestrator.submit(TaskSpec(handler="noop"))

    assert await orchestrator.dispatch_once() == 1  # a deep read: for every free slot
    assert reads[-1] == dispatch.PENDING_PER_SLOT * 81  # 20 workers x 4, and noop's 1
    assert await orchestrator.dispatch_once() == 0  # noop's slot is taken: a short read
    assert reads[-1] == dispatch.MIN_PENDING_READ

    late = await orchestrator.submit(TaskSpec(handler="other"))  # behind 299 noop tasks
    assert await orchestrator.dispatch_once() == 0
    assert reads[-1] == dispatch.MIN_PENDING_READ
    assert (await backend.get_task(late.id)).status is TaskStatus.PENDING  # type: ignore[union-attr]

    orchestrator.dispatcher.backlog.force_deep_read()
    assert await orchestrator.dispatch_once() == 1
    assert (await backend.get_task(late.id)).status is TaskStatus.DISPATCHED  # type: ignore[union-attr]
