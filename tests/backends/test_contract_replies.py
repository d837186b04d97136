"""Contract: what a client process relies on. The final record of a task submitted with ``reply_to`` is pushed to that
client's reply stream by the write that ends it, and only then; a create routed by a client
is sent only while nothing is queued; the tasks creates queue can be followed."""

from __future__ import annotations

import asyncio

from tests.backends.builders import plan, profile, submitted_event, task
from worldpool.backends import Backend
from worldpool.backends.base import DispatchOutcome, NewTask
from worldpool.models import TaskStatus


async def test_the_write_that_ends_a_task_pushes_its_record_to_its_client(
    backend: Backend,
) -> None:
    record = task("t1", reply_to="client-a")
    other = task("t2", reply_to="client-b")
    assert await backend.put_tasks([(record, 0), (other, 0)]) == [True, True]
    assert (await backend.read_replies("client-a")).records == []  # not ended yet

    record.status = TaskStatus.SUCCEEDED
    record.result = {"answer": 42}
    assert await backend.put_task(record, expect_version=1)
    page = await backend.read_replies("client-a")

    assert [(p.task_id, p.version) for p in page.replies] == [("t1", 2)]  # before decoding
    assert [(r.id, r.status, r.result, r.version) for r in page.records] == [
        ("t1", TaskStatus.SUCCEEDED, {"answer": 42}, 2)
    ]
    assert (await backend.read_replies("client-a", page.cursor)).records == []
    assert (await backend.read_replies("client-b")).records == []


async def test_a_failed_compare_pushes_nothing(backend: Backend) -> None:
    record = task("t1", reply_to="client-a")
    assert await backend.put_task(record, expect_version=0)
    record.status = TaskStatus.FAILED

    assert await backend.put_tasks([(record, 7)]) == [False]
    assert (await backend.read_replies("client-a")).records == []


async def test_a_blocked_read_wakes_when_the_reply_is_pushed(backend: Backend) -> None:
    record = task("t1", reply_to="client-a")
    assert await backend.put_task(record, expect_version=0)

    async def end_soon() -> None:
        await asyncio.sleep(0.05)
        record.status = TaskStatus.CANCELLED
        assert await backend.put_task(record, expect_version=1)

    ender = asyncio.create_task(end_soon())
    page = await backend.read_replies("client-a", None, block_s=2.0)
    await ender
    assert [r.id for r in page.records] == ["t1"]


async def test_a_task_without_reply_to_pushes_to_no_one(backend: Backend) -> None:
    record = task("t1")
    assert await backend.put_task(record, expect_version=0)
    record.status = TaskStatus.SUCCEEDED
    assert await backend.put_task(record, expect_version=1)
    assert (await backend.read_replies("client-a", None, block_s=0.05)).records == []


async def _routed(backend: Backend, task_id: str, *, only_if_queue_empty: bool) -> DispatchOutcome:
    record = task(task_id)
    routed = plan(record, "w1", expect=1)
    item = NewTask(record, submitted_event(task_id), routed, only_if_queue_empty)
    [outcome] = await backend.create_tasks([item])
    return outcome


async def test_a_client_routed_create_is_sent_only_while_nothing_is_queued(
    backend: Backend,
) -> None:
    await backend.register(profile("w1", slots=4))

    sent = await _routed(backend, "first", only_if_queue_empty=True)
    assert sent.sent and await backend.list_pending() == []

    await backend.add_pending("waiting")  # a task is queued (say, for a GPU no one has)
    held = await _routed(backend, "second", only_if_queue_empty=True)
    assert held == DispatchOutcome(sent=False)  # queued behind it, nothing refused
    assert await backend.list_pending() == ["waiting", "second"]
    stored = await backend.get_task("second")
    assert stored is not None and stored.status is TaskStatus.PENDING

    # An orchestrator that knows the queue (its own passes) is not held back.
    assert (await _routed(backend, "third", only_if_queue_empty=False)).sent


async def test_read_queued_names_only_the_tasks_a_create_queued(backend: Backend) -> None:
    await backend.register(profile("w1", slots=4))
    start = await backend.read_queued(None)  # from now on
    assert start.task_ids == []

    await _routed(backend, "sent", only_if_queue_empty=True)
    [outcome] = await backend.create_tasks([NewTask(task("queued"), submitted_event("queued"))])
    assert not outcome.sent

    page = await backend.read_queued(start.cursor, block_s=1.0)
    # Redis keeps a stream of the queued ones; the default reads every submission.
    assert "queued" in page.task_ids
    assert set(page.task_ids) <= {"sent", "queued"}
    assert (await backend.read_queued(page.cursor)).task_ids == []


async def test_only_the_write_that_ends_a_task_pushes_it(backend: Backend) -> None:
    record = task("t1", reply_to="client-a")
    assert await backend.put_task(record, expect_version=0)
    record.status = TaskStatus.FAILED
    assert await backend.put_task(record, expect_version=1)
    record.pending_reason = "explained later"  # a write to a task that had ended already
    assert await backend.put_task(record, expect_version=2)
    page = await backend.read_replies("client-a")
    assert [(r.id, r.version) for r in page.records] == [("t1", 2)]

    record.status = TaskStatus.PENDING  # retried by hand: it ends again later
    assert await backend.put_task(record, expect_version=3)
    record.status = TaskStatus.SUCCEEDED
    assert await backend.put_task(record, expect_version=4)
    again = await backend.read_replies("client-a", page.cursor)
    assert [(r.id, r.status, r.version) for r in again.records] == [("t1", TaskStatus.SUCCEEDED, 5)]
