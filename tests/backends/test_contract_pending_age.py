"""Contract: a re-queued task (failed over, retried) keeps its priority and its age, so it
goes ahead of everything submitted after it."""

from __future__ import annotations

from tests.backends.builders import submitted_event, task
from worldpool.backends import Backend
from worldpool.backends.base import NewTask


async def create(backend: Backend, task_id: str, priority: int = 0) -> None:
    record = task(task_id, priority=priority)
    await backend.create_tasks([NewTask(record, submitted_event(task_id))])


async def test_a_requeued_task_keeps_its_age(backend: Backend) -> None:
    for task_id in ("old", "mid", "new"):
        await create(backend, task_id)
    await backend.remove_pending("old")  # dispatched; then its worker died
    await backend.add_pending("old")
    assert await backend.list_pending() == ["old", "mid", "new"]


async def test_a_requeued_task_keeps_its_priority_ahead_of_its_age(backend: Backend) -> None:
    await create(backend, "old")
    await create(backend, "urgent", priority=5)
    await backend.remove_pending("old")
    await backend.add_pending("old", 0)
    await create(backend, "later")
    await backend.remove_pending("urgent")
    await backend.add_pending("urgent", 5)
    assert await backend.list_pending() == ["urgent", "old", "later"]


async def test_a_task_put_without_a_create_is_aged_when_first_queued(backend: Backend) -> None:
    await create(backend, "first")
    record = task("put-later")
    assert await backend.put_task(record, expect_version=0)
    await backend.add_pending("put-later")
    await create(backend, "last")
    assert await backend.list_pending() == ["first", "put-later", "last"]
