"""Small builders shared by the contract tests (and by tests elsewhere that need a worker's
view or a raw delivery)."""

from __future__ import annotations

from worldpool import lifecycle
from worldpool.backends import Backend
from worldpool.backends.base import Dispatch, DispatchOutcome, NewTask
from worldpool.models import (
    Event,
    EventKind,
    Location,
    ResultStatus,
    TaskRecord,
    TaskResult,
    TaskSpec,
    Worker,
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


def submitted_event(task_id: str) -> Event:
    return Event(kind=EventKind.TASK_SUBMITTED, task_id=task_id, at=1.0)


def dispatched_event(record: TaskRecord, worker_id: str) -> Event:
    return Event(
        kind=EventKind.TASK_DISPATCHED,
        task_id=record.id,
        worker_id=worker_id,
        attempt=record.attempt,
        at=100.0,
    )


def plan(
    record: TaskRecord,
    worker_id: str = "w1",
    expect: int | None = None,
    envelope: bytes | None = None,
) -> Dispatch:
    """The orchestrator's dispatch of ``record`` (as stored) to ``worker_id``: its next
    attempt, expecting the record's version unless ``expect`` says otherwise."""
    nxt = lifecycle.dispatched(record, worker_id, "eu-west-1", 100.0)
    return Dispatch(
        record=nxt,
        expect_version=record.version if expect is None else expect,
        worker_id=worker_id,
        envelope=f"{record.id}#{nxt.attempt}".encode() if envelope is None else envelope,
        event=dispatched_event(nxt, worker_id),
    )


async def send(
    backend: Backend, worker_id: str, task_id: str, envelope: bytes | None = None
) -> DispatchOutcome:
    """Dispatch ``task_id`` (created first if it is new) to ``worker_id`` as the
    orchestrator does, with ``envelope`` (default ``"<task>#<attempt>"``)."""
    stored = await backend.get_task(task_id)
    if stored is None:
        stored = task(task_id)
        [created] = await backend.create_tasks([NewTask(stored, submitted_event(task_id))])
        assert not created.conflict
    [outcome] = await backend.dispatch_many([plan(stored, worker_id, envelope=envelope)])
    assert not outcome.conflict
    return outcome


async def dispatched(
    backend: Backend, task_id: str = "t1", worker_id: str = "w1", attempt: int = 1
) -> str:
    """Dispatch ``task_id`` to ``worker_id`` until its record names ``attempt``; the last
    delivery's id."""
    delivery_id = ""
    record = await backend.get_task(task_id)
    while record is None or record.attempt < attempt:  # bounded: one attempt per pass
        outcome = await send(backend, worker_id, task_id)
        assert outcome.sent, outcome.reason
        delivery_id = outcome.delivery_id
        record = await backend.get_task(task_id)
    return delivery_id


async def send_raw(backend: Backend, worker_id: str, task_id: str, data: bytes) -> str:
    """Put ``data`` on the worker's queue as a delivery for ``task_id`` that no attempt of
    the task's record names (as a misbehaving producer would), so every report about it is
    fenced off; the delivery id."""
    record = TaskRecord(spec=TaskSpec(id=task_id, handler="raw"))
    assert await backend.put_task(record, expect_version=0)
    [outcome] = await backend.dispatch_many(
        [Dispatch(record, 1, worker_id, data, dispatched_event(record, worker_id))]
    )
    assert outcome.sent, outcome.reason
    return outcome.delivery_id


async def worker_of(backend: Backend, worker_id: str) -> Worker | None:
    """One worker as :meth:`Backend.list_workers` shows it, or None."""
    return next((w for w in await backend.list_workers() if w.id == worker_id), None)


async def slots_held(backend: Backend, worker_id: str = "w1") -> int:
    worker = await worker_of(backend, worker_id)
    assert worker is not None
    return worker.state.running
