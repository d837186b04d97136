"""Contract: every value a backend returns, compared whole (every field, and list order),
so that two backends cannot drift on a field the other tests do not look at."""

from __future__ import annotations

from tests.backends.builders import dispatched_event, plan, profile, submitted_event, task
from worldpool.backends import Backend
from worldpool.backends.base import DeadLetter, Delivery, DispatchOutcome, EventPage, NewTask
from worldpool.models import (
    Event,
    EventKind,
    HeartbeatReply,
    ResultStatus,
    TaskRecord,
    TaskResult,
    TaskStatus,
    Worker,
    WorkerState,
    WorkerStatus,
)


async def create(backend: Backend, record: TaskRecord) -> None:
    [outcome] = await backend.create_tasks([NewTask(record, submitted_event(record.id))])
    assert outcome == DispatchOutcome(sent=False)


async def test_registry_returns_whole_states(backend: Backend) -> None:
    # Given a registered worker: a fresh state, nothing else set
    state = await backend.register(profile("w1", slots=3))
    assert state == WorkerState(
        worker_id="w1", status=WorkerStatus.ONLINE, running=0, last_heartbeat=state.last_heartbeat
    )
    assert await backend.list_workers() == [Worker(profile=profile("w1", slots=3), state=state)]

    # When it holds a slot and heartbeats everything a worker reports
    record = task("mine")
    await create(backend, record)
    assert (await backend.dispatch_many([plan(record)]))[0].sent
    reported = WorkerState(
        worker_id="w1",
        status=WorkerStatus.DRAINING,
        running=7,  # the backend's count wins
        last_heartbeat=0.0,  # the backend's clock wins
        latency_ms=3.5,
        cached=["sha256:" + "a" * 64],
        sticky_keys=["wf-1"],
    )
    reply = await backend.heartbeat(reported, {"gone": 1, "mine": 1, "other": 4})

    # Then the reply and the stored state hold exactly that, revoked in the order asked
    assert reply == HeartbeatReply(
        status=WorkerStatus.DRAINING, revoked=["gone", "other"], server_time=reply.server_time
    )
    held = reported.model_copy(update={"running": 1, "last_heartbeat": reply.server_time})
    assert await backend.list_workers() == [Worker(profile=profile("w1", slots=3), state=held)]

    # And OFFLINE changes the status alone; registering again starts from a fresh state
    assert await backend.mark_offline("w1") is True
    offline = held.model_copy(update={"status": WorkerStatus.OFFLINE})
    assert await backend.list_workers() == [Worker(profile=profile("w1", slots=3), state=offline)]
    again = await backend.register(profile("w1", slots=4))
    assert again == WorkerState(worker_id="w1", running=1, last_heartbeat=again.last_heartbeat)
    assert await backend.list_workers() == [Worker(profile=profile("w1", slots=4), state=again)]


async def test_dispatch_and_delivery_return_whole_values(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    first, second = task("t1"), task("t2")
    await create(backend, first)
    await create(backend, second)
    routed = plan(first)

    sent = await backend.dispatch_many([routed, plan(second, expect=5)])
    refused = await backend.dispatch_many([plan(second)])
    never_stored = await backend.dispatch_many([plan(task("ghost"), expect=0)])

    delivery_id = sent[0].delivery_id
    assert delivery_id
    assert sent == [
        DispatchOutcome(sent=True, delivery_id=delivery_id),
        DispatchOutcome(sent=False, conflict=True),
    ]
    assert refused == [DispatchOutcome(sent=False, reason="all 1 slots are taken")]
    assert never_stored == [DispatchOutcome(sent=False, conflict=True)]
    assert await backend.get_task("ghost") is None
    assert routed.record.version == 2
    assert await backend.get_task("t1") == routed.record
    delivery = Delivery(id=delivery_id, data=b"t1#1", task_id="t1")
    assert await backend.receive("w1", 10) == [delivery]
    assert await backend.reclaim("w1") == [delivery]


async def test_create_tasks_return_whole_outcomes_and_records(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    queued, routed, refused = task("queued"), task("routed"), task("refused")
    routing = plan(routed, expect=1)

    outcomes = await backend.create_tasks(
        [
            NewTask(queued, submitted_event("queued")),
            NewTask(routed, submitted_event("routed"), routing),
            NewTask(refused, submitted_event("refused"), plan(refused, expect=1)),
            NewTask(task("queued"), submitted_event("queued")),
        ]
    )

    assert outcomes == [
        DispatchOutcome(sent=False),
        DispatchOutcome(sent=True, delivery_id=outcomes[1].delivery_id),
        DispatchOutcome(sent=False, reason="all 1 slots are taken"),
        DispatchOutcome(sent=False, conflict=True),
    ]
    assert outcomes[1].delivery_id
    assert await backend.get_tasks(["queued", "routed", "refused"]) == [
        queued,
        routing.record,
        refused,
    ]
    assert [(queued.version, routing.record.version, refused.version)] == [(1, 2, 1)]


async def test_results_return_whole_reports(backend: Backend) -> None:
    await backend.register(profile("w1"))
    record = task("t1")
    await create(backend, record)
    assert (await backend.dispatch_many([plan(record)]))[0].sent
    report = TaskResult(
        task_id="t1",
        attempt=1,
        worker_id="w1",
        status=ResultStatus.SUCCEEDED,
        value={"answer": [1, 2]},
        error=None,
        retryable=False,
        started_at=10.0,
        ended_at=12.5,
        tokens_used=7,
        cost_usd=0.25,
        progress=1.0,
        logs=["done"],
        meta={"k": "v"},
    )

    assert await backend.complete(report) is True
    [message] = await backend.receive_results("orch")

    assert message.result == report
    assert message.id


async def test_record_lists_return_whole_records_in_order(backend: Backend) -> None:
    now = await backend.now()
    records = [task(i, schedule_to_start_timeout_s=1.0) for i in ("c", "a", "b")]
    for record in records:
        record.submitted_at = now - 10
        await create(backend, record)
    finished = records[2].model_copy(update={"status": TaskStatus.SUCCEEDED})
    assert await backend.put_task(finished, expect_version=1)
    by_id = {r.id: r for r in [*records[:2], finished]}

    assert await backend.list_tasks() == [by_id["c"], by_id["a"], by_id["b"]]  # first put
    assert await backend.list_active_tasks() == [by_id["a"], by_id["c"]]  # by id
    assert await backend.list_due_tasks(now) == [by_id["a"], by_id["c"]]  # deadline, id
    assert await backend.get_tasks(["b", "none"]) == [finished, None]


async def test_events_return_whole_events(backend: Backend) -> None:
    event = Event(
        kind=EventKind.TASK_DISPATCHED,
        task_id="t1",
        workflow_id="wf-1",
        worker_id="w1",
        attempt=2,
        at=5.0,
        message="m",
        data={"n": 1},
    )

    appended = await backend.append_event(event)
    [batch] = await backend.append_events([dispatched_event(task("t2"), "w2")])

    assert appended == event.model_copy(update={"seq": appended.seq}) and appended.seq
    assert await backend.read_events() == [appended, batch]
    page = await backend.read_events_of(frozenset({EventKind.TASK_DISPATCHED}), appended.seq)
    assert page == EventPage([batch], batch.seq)
    empty = await backend.read_events_of(frozenset({EventKind.TASK_FAILED}))
    assert empty == EventPage([], batch.seq)


async def test_dead_letters_return_whole_letters(backend: Backend) -> None:
    await backend.dead_letter("w1", "bad_signature", "signature does not match", b"\x00{1}")

    [letter] = await backend.list_dead_letters()

    assert letter == DeadLetter(
        worker_id="w1",
        code="bad_signature",
        reason="signature does not match",
        data=b"\x00{1}",
        at=letter.at,
    )
