"""Contract: the batched fast path (dispatch_many, put_tasks, append_events, complete with
ack) and the timeout index behind list_due_tasks."""

from __future__ import annotations

import pytest

from tests.backends.builders import (
    plan,
    profile,
    result,
    slots_held,
    submitted_event,
    task,
    worker_of,
)
from worldpool import lifecycle
from worldpool.backends import Backend
from worldpool.backends.base import DispatchOutcome, NewTask
from worldpool.models import (
    Event,
    EventKind,
    ResultStatus,
    TaskRecord,
    TaskResult,
    TaskStatus,
    WorkerStatus,
)


async def pending_task(backend: Backend, task_id: str, **spec: object) -> TaskRecord:
    record = task(task_id, **spec)
    assert await backend.put_task(record, expect_version=0)
    await backend.add_pending(task_id)
    return record


async def test_dispatch_many_sends_writes_dequeues_and_logs_each_task(backend: Backend) -> None:
    await backend.register(profile("w1", slots=4))
    records = [await pending_task(backend, f"t{i}") for i in range(3)]

    outcomes = await backend.dispatch_many([plan(r) for r in records])

    assert [o.sent for o in outcomes] == [True, True, True]
    assert await backend.list_pending() == []
    assert await slots_held(backend) == 3
    deliveries = await backend.receive("w1", 10)
    assert [d.data for d in deliveries] == [b"t0#1", b"t1#1", b"t2#1"]
    assert [d.id for d in deliveries] == [o.delivery_id for o in outcomes]
    stored = await backend.get_task("t1")
    assert stored is not None
    assert (stored.status, stored.worker_id, stored.attempt, stored.version) == (
        TaskStatus.DISPATCHED,
        "w1",
        1,
        2,
    )
    events = await backend.read_events()
    assert [(e.kind, e.task_id) for e in events] == [
        (EventKind.TASK_DISPATCHED, f"t{i}") for i in range(3)
    ]
    # The stored record is fenced to the new attempt: its worker's report is accepted.
    assert await backend.complete(result("t1", "w1", 1)) is True


async def test_dispatch_many_compare_failure_changes_nothing(backend: Backend) -> None:
    await backend.register(profile("w1", slots=4))
    good = await pending_task(backend, "good")
    raced = await pending_task(backend, "raced")

    outcomes = await backend.dispatch_many([plan(raced, expect=7), plan(good)])

    assert (outcomes[0].sent, outcomes[0].conflict) == (False, True)
    assert outcomes[1].sent
    assert await backend.list_pending() == ["raced"]
    assert await slots_held(backend) == 1
    stored = await backend.get_task("raced")
    assert stored is not None and stored.status is TaskStatus.PENDING and stored.version == 1
    assert [d.task_id for d in await backend.receive("w1", 10)] == ["good"]
    assert [e.task_id for e in await backend.read_events()] == ["good"]


@pytest.mark.parametrize("why", ["full", "offline", "unknown"])
async def test_dispatch_many_refused_reservation_changes_nothing(
    backend: Backend, why: str
) -> None:
    await backend.register(profile("w1", slots=1))
    if why == "full":
        first = await pending_task(backend, "first")
        assert (await backend.dispatch_many([plan(first)]))[0].sent
    elif why == "offline":
        await backend.mark_offline("w1")
    record = await pending_task(backend, "t1")

    [outcome] = await backend.dispatch_many([plan(record, "ghost" if why == "unknown" else "w1")])

    assert not outcome.sent and not outcome.conflict
    assert outcome.reason
    stored = await backend.get_task("t1")
    assert stored is not None and stored.status is TaskStatus.PENDING and stored.version == 1
    assert "t1" in await backend.list_pending()
    assert [e.task_id for e in await backend.read_events()] == (["first"] if why == "full" else [])


async def test_complete_with_ack_acknowledges_the_delivery_even_when_fenced(
    backend: Backend,
) -> None:
    await backend.register(profile("w1", slots=2))
    one, two = await pending_task(backend, "t1"), await pending_task(backend, "t2")
    await backend.dispatch_many([plan(one), plan(two)])
    first, second = await backend.receive("w1", 10)

    assert await backend.complete(result("t1", "w1", 1), ack=first.id) is True
    # A stale report (wrong attempt) is refused, but its delivery is still acknowledged.
    assert await backend.complete(result("t2", "w1", 9), ack=second.id) is False

    assert await backend.reclaim("w1") == []  # nothing left unacknowledged
    [message] = await backend.receive_results("orch")
    assert message.result.task_id == "t1"


async def test_put_tasks_compares_each_write_on_its_own(backend: Backend) -> None:
    a, b = task("a"), task("b")
    assert await backend.put_tasks([(a, 0), (b, None)]) == [True, True]
    assert (a.version, b.version) == (1, 1)

    a.status = TaskStatus.CANCELLED
    b.status = TaskStatus.CANCELLED
    assert await backend.put_tasks([(a, 1), (b, 5)]) == [True, False]

    stored_a, stored_b = await backend.get_tasks(["a", "b"])
    assert stored_a is not None and stored_a.status is TaskStatus.CANCELLED
    assert stored_a.version == 2
    assert stored_b is not None and stored_b.status is TaskStatus.PENDING
    assert [r.id for r in await backend.list_active_tasks()] == ["b"]


async def test_append_events_keeps_order_and_sets_seq(backend: Backend) -> None:
    events = [Event(kind=EventKind.TASK_SUCCEEDED, task_id=f"t{i}", at=1.0) for i in range(3)]

    appended = await backend.append_events(events)

    seqs = [e.seq for e in appended]
    assert all(seqs) and seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [(e.task_id, e.seq) for e in await backend.read_events()] == [
        (e.task_id, e.seq) for e in appended
    ]
    assert await backend.append_events([]) == []


async def test_due_tasks_are_those_whose_timeout_deadline_passed(backend: Backend) -> None:
    now = await backend.now()
    late = task("late", schedule_to_start_timeout_s=1.0)
    late.submitted_at = now - 10
    fresh = task("fresh", schedule_to_start_timeout_s=60.0)
    fresh.submitted_at = now
    plain = task("plain")
    plain.submitted_at = now - 1000
    assert await backend.put_tasks([(late, 0), (fresh, 0), (plain, 0)]) == [True] * 3

    assert [r.id for r in await backend.list_due_tasks(now)] == ["late"]
    assert [r.id for r in await backend.list_due_tasks(now + 120)] == ["late", "fresh"]

    # A finished task leaves the index.
    assert await backend.put_task(lifecycle.cancelled(late, now), expect_version=late.version)
    assert [r.id for r in await backend.list_due_tasks(now + 120)] == ["fresh"]


async def test_running_tasks_are_due_by_execution_and_heartbeat_timeouts(
    backend: Backend,
) -> None:
    await backend.register(profile("w1", slots=2))
    now = await backend.now()
    slow = await pending_task(backend, "slow", execution_timeout_s=5.0)
    quiet = await pending_task(backend, "quiet", heartbeat_timeout_s=2.0)
    await backend.dispatch_many([plan(slow), plan(quiet)])
    # Dispatched but not started: no timeout can fire yet.
    assert await backend.list_due_tasks(now + 100) == []

    for task_id in ("slow", "quiet"):
        record = await backend.get_task(task_id)
        assert record is not None
        report = TaskResult(
            task_id=task_id, worker_id="w1", attempt=1, status=ResultStatus.STARTED, started_at=now
        )
        started = lifecycle.apply_result(record, report, now)
        assert started is not None
        assert await backend.put_task(started, expect_version=record.version)

    assert await backend.list_due_tasks(now + 1) == []
    assert [r.id for r in await backend.list_due_tasks(now + 3)] == ["quiet"]
    assert [r.id for r in await backend.list_due_tasks(now + 6)] == ["quiet", "slow"]
    worker = await worker_of(backend, "w1")
    assert worker is not None and worker.state.status is WorkerStatus.ONLINE


async def create(backend: Backend, record: TaskRecord) -> DispatchOutcome:
    [outcome] = await backend.create_tasks([NewTask(record, submitted_event(record.id))])
    return outcome


async def test_create_tasks_stores_queues_and_logs_once(backend: Backend) -> None:
    record = task("t1", priority=5, schedule_to_start_timeout_s=1.0)
    record.submitted_at = await backend.now() - 10
    other = task("t0")

    assert await create(backend, other) == DispatchOutcome(sent=False)
    assert await create(backend, record) == DispatchOutcome(sent=False)
    assert record.version == 1

    again = task("t1")
    assert await create(backend, again) == DispatchOutcome(sent=False, conflict=True)
    assert again.version == 0  # the id is taken: nothing changed
    stored = await backend.get_task("t1")
    assert stored is not None and stored.version == 1 and stored.spec.priority == 5
    assert await backend.list_pending() == ["t1", "t0"]  # priority first
    assert [e.task_id for e in await backend.read_events()] == ["t0", "t1"]
    assert [r.id for r in await backend.list_tasks()] == ["t0", "t1"]
    assert [r.id for r in await backend.list_due_tasks(await backend.now())] == ["t1"]
    # Fenced like any stored record: no worker may report on a task never dispatched.
    assert await backend.complete(result("t1", "w1", 1)) is False


async def test_put_tasks_appends_each_writes_events_only_if_it_happens(backend: Backend) -> None:
    a, b = task("a"), task("b")
    assert await backend.put_tasks([(a, 0), (b, 0)]) == [True, True]
    done = Event(kind=EventKind.TASK_CANCELLED, at=1.0)

    a.status = b.status = TaskStatus.CANCELLED
    written = await backend.put_tasks(
        [(a, 1), (b, 9)],
        [
            [done.model_copy(update={"task_id": "a"}), done.model_copy(update={"task_id": "a2"})],
            [done.model_copy(update={"task_id": "b"})],
        ],
    )

    assert written == [True, False]
    assert [e.task_id for e in await backend.read_events()] == ["a", "a2"]


async def test_create_tasks_creates_each_on_its_own(backend: Backend) -> None:
    taken = task("taken")
    submitted = Event(kind=EventKind.TASK_SUBMITTED, at=1.0)
    assert not (await create(backend, taken)).conflict

    fresh, again = task("fresh"), task("taken")
    outcomes = await backend.create_tasks(
        [
            NewTask(fresh, submitted.model_copy(update={"task_id": "fresh"})),
            NewTask(again, submitted.model_copy(update={"task_id": "again"})),
        ]
    )

    assert [(o.sent, o.conflict, o.reason) for o in outcomes] == [
        (False, False, ""),
        (False, True, ""),
    ]
    assert fresh.version == 1
    assert await backend.list_pending() == ["taken", "fresh"]
    assert [e.task_id for e in await backend.read_events()] == ["taken", "fresh"]
    assert await backend.create_tasks([]) == []


async def test_create_tasks_dispatches_a_routed_task_in_the_same_step(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    record = task("t1", schedule_to_start_timeout_s=1.0)  # no longer applies once sent
    routed = plan(record, expect=1)

    [outcome] = await backend.create_tasks([NewTask(record, submitted_event("t1"), routed)])

    assert outcome.sent and not outcome.conflict and outcome.delivery_id
    assert (record.version, routed.record.version) == (1, 2)
    stored = await backend.get_task("t1")
    assert stored is not None
    assert (stored.status, stored.worker_id, stored.attempt, stored.version) == (
        TaskStatus.DISPATCHED,
        "w1",
        1,
        2,
    )
    assert await backend.list_pending() == []  # never queued
    assert await slots_held(backend) == 1
    [delivery] = await backend.receive("w1", 10)
    assert (delivery.id, delivery.data, delivery.task_id) == (outcome.delivery_id, b"t1#1", "t1")
    kinds = [(e.kind, e.task_id) for e in await backend.read_events()]
    assert kinds == [(EventKind.TASK_SUBMITTED, "t1"), (EventKind.TASK_DISPATCHED, "t1")]
    assert await backend.list_due_tasks(await backend.now() + 60) == []
    # Fenced to the dispatched attempt like any dispatch.
    assert await backend.complete(result("t1", "w1", 1)) is True


async def test_create_tasks_queues_a_routed_task_its_worker_cannot_take(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    first, second = task("a"), task("b")

    outcomes = await backend.create_tasks(
        [
            NewTask(first, submitted_event("a"), plan(first, expect=1)),
            NewTask(second, submitted_event("b"), plan(second, expect=1)),  # no slot left
            NewTask(task("c"), submitted_event("c"), plan(task("c"), "nobody", expect=1)),
        ]
    )

    assert [o.sent for o in outcomes] == [True, False, False]
    assert outcomes[1].reason == "all 1 slots are taken"
    assert outcomes[2].reason == "no such worker is registered"
    assert second.version == 1
    stored = await backend.get_task("b")
    assert stored is not None and (stored.status, stored.version) == (TaskStatus.PENDING, 1)
    assert await backend.list_pending() == ["b", "c"]
    assert [d.task_id for d in await backend.receive("w1", 10)] == ["a"]
    dispatched = [
        e.task_id for e in await backend.read_events() if e.kind is EventKind.TASK_DISPATCHED
    ]
    assert dispatched == ["a"]


async def test_create_tasks_never_dispatches_over_an_existing_task(backend: Backend) -> None:
    await backend.register(profile("w1", slots=2))
    existing = task("t1")
    assert not (await create(backend, existing)).conflict  # version 1, queued
    again = task("t1")

    [outcome] = await backend.create_tasks(
        [NewTask(again, submitted_event("t1"), plan(again, expect=1))]
    )

    assert outcome.conflict and not outcome.sent
    stored = await backend.get_task("t1")
    assert stored is not None and (stored.status, stored.version) == (TaskStatus.PENDING, 1)
    assert await slots_held(backend) == 0
    assert await backend.receive("w1", 10) == []
