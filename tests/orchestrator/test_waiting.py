"""A task that fits but finds every fitting worker busy says so in its pending reason,
with its place in the queue; one that no worker can take records its full explanation."""

from __future__ import annotations

import pytest

from worldpool.backends.memory import MemoryBackend
from worldpool.embedded import FAST_SETTINGS, make_worker
from worldpool.models import TaskSpec, TaskStatus
from worldpool.orchestrator import waiting
from worldpool.orchestrator.core import Orchestrator


async def test_a_backlog_says_it_waits_for_a_slot_and_where_it_stands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(waiting, "WAIT_NOTED_AFTER_S", 0.0)
    backend = MemoryBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=1))
    orchestrator = Orchestrator(backend, FAST_SETTINGS)  # passes driven by hand
    tasks = [await orchestrator.submit(TaskSpec(handler="noop")) for _ in range(3)]

    assert await orchestrator.dispatch_once() == 1
    assert await orchestrator.dispatch_once() == 0  # the slot is taken

    records = [await backend.get_task(t.id) for t in tasks]
    assert [r.status for r in records if r] == [
        TaskStatus.DISPATCHED,
        TaskStatus.PENDING,
        TaskStatus.PENDING,
    ]
    reasons = [r.pending_reason for r in records[1:] if r]
    assert reasons == [
        "waiting for a free slot: every worker that fits is busy (1st in the queue)",
        "waiting for a free slot: every worker that fits is busy (2nd in the queue)",
    ]


async def test_a_short_wait_writes_nothing() -> None:
    backend = MemoryBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=1))
    orchestrator = Orchestrator(backend, FAST_SETTINGS)
    tasks = [await orchestrator.submit(TaskSpec(handler="noop")) for _ in range(2)]
    await orchestrator.dispatch_once()
    second = await backend.get_task(tasks[1].id)
    assert second is not None and second.version == 1  # not written again: it just came


async def test_a_queue_that_drains_fast_writes_no_reason_for_its_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a burst the head of the queue leaves within milliseconds: no record write each."""
    monkeypatch.setattr(waiting, "WAIT_NOTED_AFTER_S", 1.0)
    backend = MemoryBackend(FAST_SETTINGS)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=1))
    orchestrator = Orchestrator(backend, FAST_SETTINGS)
    tasks = [await orchestrator.submit(TaskSpec(handler="noop")) for _ in range(3)]
    records = [r for r in [await backend.get_task(t.id) for t in tasks] if r is not None]
    long_ago = [r.model_copy(update={"submitted_at": r.submitted_at - 60}) for r in records]
    notes = waiting.WaitNotes(
        backend, orchestrator.records, orchestrator.changes, orchestrator.transitions
    )
    now = records[0].submitted_at

    notes.sent(now, 2 * waiting.DRAIN_WINDOW_S)  # 2 a second: the 1st leaves within 1 s
    await notes.busy(long_ago, now)
    after = [await backend.get_task(t.id) for t in tasks]
    assert [r.pending_reason for r in after if r] == [
        None,
        "waiting for a free slot: every worker that fits is busy (2nd in the queue)",
        "waiting for a free slot: every worker that fits is busy (3rd in the queue)",
    ]

    notes.sent(now + waiting.DRAIN_WINDOW_S + 1, 0)  # the window passed: nothing drains
    assert notes._leaving_within_notice() == 0


def test_places_read_as_ordinals() -> None:
    assert [waiting._nth(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip


async def test_a_batch_task_held_back_by_the_interactive_reserve_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(waiting, "WAIT_NOTED_AFTER_S", 0.0)
    settings = FAST_SETTINGS.model_copy(update={"interactive_reserve": 1})
    backend = MemoryBackend(settings)
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=2))
    orchestrator = Orchestrator(backend, settings)
    batch = [await orchestrator.submit(TaskSpec(handler="noop")) for _ in range(2)]

    assert await orchestrator.dispatch_once() == 1  # the second slot is kept back
    assert await orchestrator.dispatch_once() == 0
    held = await backend.get_task(batch[1].id)
    assert held is not None and held.status is TaskStatus.PENDING
    assert held.pending_reason == (
        "waiting for a free slot: every worker that fits is busy or keeps its last free "
        "slots for interactive work (1st in the queue)"
    )
    chat = await orchestrator.submit(TaskSpec(handler="noop", interactive=True))
    await orchestrator.dispatch_once()
    record = await backend.get_task(chat.id)
    assert record is not None and record.status is not TaskStatus.PENDING
