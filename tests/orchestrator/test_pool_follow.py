"""The orchestrator follows the pool by its changes (no whole-pool reads per pass) and
keeps rejected candidates off the dispatch path: lean records for dispatched tasks, full
explanations for tasks that wait or fail, and on demand (passes driven by hand, no
loops)."""

from __future__ import annotations

from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS
from worldpool.models import (
    ResultStatus,
    RetryPolicy,
    TaskResult,
    TaskSpec,
    TaskStatus,
    Worker,
    WorkerState,
    WorkerStatus,
)
from worldpool.orchestrator.core import Orchestrator
from worldpool.testing import make_worker


class CountingBackend(MemoryBackend):
    """Counts whole-pool reads."""

    full_reads = 0

    async def list_workers(self) -> list[Worker]:
        self.full_reads += 1
        return await super().list_workers()


async def _setup(lacking: int = 30) -> tuple[CountingBackend, Orchestrator]:
    backend = CountingBackend(FAST_SETTINGS)
    await backend.register(make_worker("w-noop", handlers=["noop"], max_concurrency=8))
    for i in range(lacking):  # registered, but without the task's handler
        await backend.register(make_worker(f"x-{i:03d}", handlers=["other"]))
    orch = Orchestrator(backend, FAST_SETTINGS, name="here")
    await orch.pool_view.refresh()  # what start() does: the one whole read
    return backend, orch


async def test_passes_read_the_pool_by_its_changes_only() -> None:
    backend, orch = await _setup()
    reads = backend.full_reads
    for n in range(5):
        orch.pool_view.mark_stale("w-noop")
        await orch.pool_view.refresh()
        await backend.heartbeat(WorkerState(worker_id=f"x-{n:03d}", heartbeat_seq=n))
        await orch.sweep_once()

    await backend.register(make_worker("late", handlers=["late"]))
    await orch.pool_view.refresh()

    assert backend.full_reads == reads, "no pass read the whole pool"
    assert "late" in orch.pool_snapshot  # a registration arrives as a change
    await orch.submit(TaskSpec(id="t-late", handler="late"))
    assert await orch.dispatch_once() == 1
    assert (await orch.get_task("t-late")).worker_id == "late"


async def test_a_heartbeat_moves_the_snapshots_clock_and_nothing_else() -> None:
    backend, orch = await _setup(lacking=1)
    row = orch.pool_snapshot.row_of("x-000")
    before = float(orch.pool_snapshot.last_heartbeat[row])

    await backend.heartbeat(WorkerState(worker_id="x-000", heartbeat_seq=9))
    orch.pool_view.mark_stale("none")  # any refresh reads the heartbeats since the last
    await orch.pool_view.refresh()

    assert float(orch.pool_snapshot.last_heartbeat[row]) >= before
    worker = orch.pool_view.worker("x-000")
    assert worker.state.last_heartbeat == float(orch.pool_snapshot.last_heartbeat[row])


async def test_a_dispatched_task_records_a_lean_decision_explained_on_demand() -> None:
    _, orch = await _setup()
    await orch.submit(TaskSpec(id="t1", handler="noop"))
    assert await orch.dispatch_once() == 1

    record = await orch.get_task("t1")
    assert record.status is TaskStatus.DISPATCHED
    assert record.decision is not None
    assert not record.decision.explained
    assert [c.worker_id for c in record.decision.candidates] == ["w-noop"]
    assert record.decision.excluded_by == {}  # counting exclusions is explaining

    full = await orch.explain_task("t1")
    assert full.explained
    assert full.winner == "w-noop"
    assert full.excluded_by == {"capabilities:no_handler": 30}
    misses = [c for c in full.candidates if not c.feasible]
    assert misses and all(any(not v.ok for v in c.verdicts) for c in misses)


async def test_a_task_that_waits_records_its_full_explanation() -> None:
    _, orch = await _setup()
    await orch.submit(TaskSpec(id="t-none", handler="nobody-has-it"))
    await orch.dispatch_once()

    record = await orch.get_task("t-none")
    assert record.status is TaskStatus.PENDING
    assert record.decision is not None and record.decision.explained
    assert record.decision.suggestion
    assert record.pending_reason
    assert await orch.explain_task("t-none") == record.decision


async def test_a_task_that_fails_for_good_records_its_full_explanation() -> None:
    _, orch = await _setup()
    spec = TaskSpec(id="t-fail", handler="noop", retry=RetryPolicy(max_retries=0))
    await orch.submit(spec)
    await orch.dispatch_once()
    assert not (await orch.get_task("t-fail")).decision.explained  # type: ignore[union-attr]

    await orch.results.apply_result(
        TaskResult(
            task_id="t-fail",
            attempt=1,
            worker_id="w-noop",
            status=ResultStatus.FAILED,
            error="boom",
            retryable=False,
        )
    )

    record = await orch.get_task("t-fail")
    assert record.status is TaskStatus.FAILED
    assert record.decision is not None and record.decision.explained
    assert record.decision.excluded_by == {"capabilities:no_handler": 30}
    assert len(record.decision.candidates) == orch.settings.report_candidates_max
    assert await orch.explain_task("t-fail") == record.decision  # recorded, not redone
    letters = await orch.backend.list_dead_letters(10)
    assert [letter.code for letter in letters] == ["failed"]  # dead-lettered as before


async def test_free_slots_follow_slot_changes_and_refreshes() -> None:
    backend, orch = await _setup(lacking=3)
    view = orch.pool_view

    def counted() -> int:  # what a count over the whole snapshot says
        online = [w for w in view.snapshot.workers if w.state.status is WorkerStatus.ONLINE]
        return sum(max(0, w.profile.max_concurrency - w.state.running) for w in online)

    assert view.free_slots() == counted() > 0
    for delta in (+1, +1, +1, -1, +1):
        before = view.free_slots()
        view.adjust_running("w-noop", delta)
        assert view.free_slots() == counted() == before - delta
    view.adjust_running("nobody", +1)  # not in the pool: nothing changes
    assert view.free_slots() == counted()
    await backend.register(make_worker("w-noop", handlers=["noop"], max_concurrency=2))
    await backend.heartbeat(WorkerState(worker_id="x-001", status=WorkerStatus.DRAINING))
    view.mark_stale("x-001")
    await view.refresh()
    assert view.snapshot.workers[view.snapshot.row_of("x-001")].state.status is (
        WorkerStatus.DRAINING
    )
    assert view.free_slots() == counted()
    for _ in range(4):  # more than it has: a full worker has none, never fewer
        view.adjust_running("w-noop", +1)
        assert view.free_slots() == counted()
