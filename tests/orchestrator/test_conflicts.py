"""Compare-and-set loops are bounded, and one that gives up says so with the id (a backend
whose writes of one kind always conflict; loops not started)."""

from __future__ import annotations

import logging

import pytest

from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS
from worldpool.models import (
    Event,
    ResultStatus,
    TaskRecord,
    TaskResult,
    TaskSpec,
    TaskStatus,
    WorkflowRecord,
)
from worldpool.orchestrator.core import Orchestrator
from worldpool.orchestrator.transitions import CAS_ATTEMPTS
from worldpool.testing import make_worker
from worldpool.workflow.builder import Workflow


class ConflictingBackend(MemoryBackend):
    """Another writer always gets there first, for the record kinds switched on."""

    tasks_conflict = False
    workflows_conflict = False
    task_writes = 0
    workflow_writes = 0

    async def put_task(self, record: TaskRecord, expect_version: int | None = None) -> bool:
        if self.tasks_conflict:
            self.task_writes += 1
            return False
        return await super().put_task(record, expect_version)

    async def put_tasks(
        self,
        writes: list[tuple[TaskRecord, int | None]],
        events: list[list[Event]] | None = None,
    ) -> list[bool]:
        if self.tasks_conflict:
            self.task_writes += len(writes)
            return [False] * len(writes)
        return await super().put_tasks(writes, events)

    async def put_workflow(self, record: WorkflowRecord, expect_version: int | None = None) -> bool:
        if self.workflows_conflict and expect_version:
            self.workflow_writes += 1
            return False
        return await super().put_workflow(record, expect_version)


async def _setup() -> tuple[ConflictingBackend, Orchestrator]:
    backend = ConflictingBackend(FAST_SETTINGS)
    return backend, Orchestrator(backend, FAST_SETTINGS)


async def test_cancelling_a_task_gives_up_after_bounded_conflicts_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, orch = await _setup()
    record = await orch.submit(TaskSpec(handler="h"))
    backend.tasks_conflict = True

    with caplog.at_level(logging.WARNING):
        assert await orch.cancel(record.id) is False

    assert backend.task_writes == CAS_ATTEMPTS
    assert f"gave up cancelling task {record.id}" in caplog.text
    assert (await orch.get_task(record.id)).status is TaskStatus.PENDING


async def test_cancelling_a_workflow_is_bounded_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, orch = await _setup()
    wf = Workflow("stuck")
    wf.step("only", handler="h")
    spec = wf.build()
    await orch.submit_workflow(spec)
    backend.workflows_conflict = True

    with caplog.at_level(logging.WARNING):
        assert await orch.cancel(spec.id) is False  # was unbounded recursion

    assert backend.workflow_writes == CAS_ATTEMPTS
    assert f"gave up cancelling workflow {spec.id}" in caplog.text


async def test_advancing_a_workflow_gives_up_after_bounded_conflicts_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, orch = await _setup()
    wf = Workflow("stuck")
    first = wf.step("first", handler="h")
    wf.step("second", handler="h", after=[first])
    spec = wf.build()
    await orch.submit_workflow(spec)
    backend.workflows_conflict = True

    with caplog.at_level(logging.WARNING):
        await orch.workflows.advance(spec.id)

    assert backend.workflow_writes == CAS_ATTEMPTS
    assert f"gave up advancing workflow {spec.id}" in caplog.text


async def test_applying_a_report_gives_up_after_bounded_conflicts_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, orch = await _setup()
    await backend.register(make_worker("w1", handlers=["h"]))
    record = await orch.submit(TaskSpec(handler="h"))
    assert await orch.dispatch_once() == 1
    backend.tasks_conflict = True
    report = TaskResult(task_id=record.id, attempt=1, worker_id="w1", status=ResultStatus.STARTED)

    with caplog.at_level(logging.WARNING):
        await orch.apply_result(report)

    assert backend.task_writes == CAS_ATTEMPTS
    assert f"report of task {record.id} attempt 1" in caplog.text
