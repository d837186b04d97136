"""Small builders shared by the contract tests."""

from __future__ import annotations

from worldpool.backends import Backend
from worldpool.models import (
    Location,
    ResultStatus,
    TaskRecord,
    TaskResult,
    TaskSpec,
    TaskStatus,
    WorkerProfile,
)


def profile(worker_id: str = "w1", slots: int = 2) -> WorkerProfile:
    return WorkerProfile(
        id=worker_id,
        capabilities=frozenset({"coding"}),
        location=Location(region="eu-west-1"),
        max_concurrency=slots,
    )


def task(task_id: str = "t1", **spec: object) -> TaskRecord:
    return TaskRecord(spec=TaskSpec(id=task_id, handler="echo", **spec))


def result(
    task_id: str = "t1",
    worker_id: str = "w1",
    attempt: int = 1,
    status: ResultStatus = ResultStatus.SUCCEEDED,
) -> TaskResult:
    return TaskResult(task_id=task_id, worker_id=worker_id, attempt=attempt, status=status)


async def dispatched(
    backend: Backend, task_id: str = "t1", worker_id: str = "w1", attempt: int = 1
) -> str:
    """Store a record naming ``worker_id``/``attempt`` and reserve + send it; the delivery id."""
    record = task(task_id)
    record.status = TaskStatus.DISPATCHED
    record.worker_id = worker_id
    record.attempt = attempt
    stored = await backend.get_task(task_id)
    assert await backend.put_task(record, expect_version=stored.version if stored else 0)
    return await backend.reserve_and_send(worker_id, task_id, f"{task_id}#{attempt}".encode())
