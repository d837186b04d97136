"""Contract: fenced complete(), the results consumer group and its redelivery."""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.builders import dispatched, profile, result, slots_held
from tests.backends.conftest import CONTRACT_CLAIM_AFTER_S, Connect
from worldpool.backends import Backend
from worldpool.backends.base import ResultMessage
from worldpool.models import ResultStatus, TaskStatus


async def drain(backend: Backend, consumer: str = "orch") -> list[str]:
    """Every queued result's task id and status, acked (bounded loop)."""
    seen: list[str] = []
    for _ in range(100):
        batch = await backend.receive_results(consumer)
        if not batch:
            return seen
        seen += [f"{m.result.task_id}:{m.result.status.value}" for m in batch]
        await backend.ack_results([m.id for m in batch])
    raise AssertionError("results never ran dry")


async def reported(backend: Backend, n: int, consumer: str) -> list[ResultMessage]:
    """``n`` tasks dispatched to a 3-slot w1 and reported; ``consumer`` takes the reports."""
    await backend.register(profile("w1", slots=3))
    for i in range(n):
        await dispatched(backend, f"t{i}")
        assert await backend.complete(result(f"t{i}"))
    taken = await backend.receive_results(consumer)
    assert len(taken) == n
    return taken


@pytest.fixture
async def with_task(backend: Backend) -> Backend:
    await backend.register(profile("w1", slots=2))
    await dispatched(backend, "t1", "w1", attempt=1)
    return backend


@pytest.mark.parametrize(
    "status",
    [ResultStatus.SUCCEEDED, ResultStatus.FAILED, ResultStatus.REJECTED, ResultStatus.REVOKED],
)
async def test_terminal_result_is_queued_and_frees_the_slot(
    with_task: Backend, status: ResultStatus
) -> None:
    backend = with_task
    assert await backend.complete(result("t1", "w1", 1, status)) is True

    assert await slots_held(backend) == 0
    [message] = await backend.receive_results("orch")
    assert message.result.task_id == "t1"
    assert message.result.status is status
    assert message.result.attempt == 1


@pytest.mark.parametrize("status", [ResultStatus.STARTED, ResultStatus.PROGRESS])
async def test_started_and_progress_keep_the_slot(with_task: Backend, status: ResultStatus) -> None:
    backend = with_task
    assert await backend.complete(result("t1", "w1", 1, status)) is True

    assert await slots_held(backend) == 1
    assert await drain(backend) == [f"t1:{status.value}"]


async def test_stale_attempt_is_fenced_off(with_task: Backend) -> None:
    # Given the task was retried as attempt 2 on another worker
    backend = with_task
    await backend.register(profile("w2"))
    await dispatched(backend, "t1", "w2", attempt=2)

    # When the zombie first attempt reports
    accepted = await backend.complete(result("t1", "w1", 1, ResultStatus.SUCCEEDED))

    # Then nothing is queued and no slot changes
    assert accepted is False
    assert await drain(backend) == []
    assert await slots_held(backend, "w1") == 1
    assert await slots_held(backend, "w2") == 1


async def test_wrong_worker_is_fenced_off(with_task: Backend) -> None:
    backend = with_task
    await backend.register(profile("w2"))

    assert await backend.complete(result("t1", "w2", 1)) is False
    assert await drain(backend) == []
    assert await slots_held(backend, "w1") == 1


async def test_terminal_record_and_unknown_task_are_fenced_off(with_task: Backend) -> None:
    backend = with_task
    record = await backend.get_task("t1")
    assert record is not None
    record.status = TaskStatus.SUCCEEDED
    assert await backend.put_task(record, expect_version=record.version)

    assert await backend.complete(result("t1", "w1", 1)) is False
    assert await backend.complete(result("nope", "w1", 1)) is False
    assert await drain(backend) == []
    assert await slots_held(backend) == 1


async def test_duplicate_terminal_reports_both_queue_while_record_is_open(
    with_task: Backend,
) -> None:
    # complete() fences on the record, which only the orchestrator changes: until it
    # applies the first result, a duplicate is accepted too (results are at-least-once).
    backend = with_task
    assert await backend.complete(result("t1", "w1", 1)) is True
    assert await backend.complete(result("t1", "w1", 1)) is True
    assert await slots_held(backend) == 0
    assert await drain(backend) == ["t1:succeeded", "t1:succeeded"]


async def test_results_come_in_order_and_respect_max_count(with_task: Backend) -> None:
    backend = with_task
    await backend.complete(result("t1", "w1", 1, ResultStatus.STARTED))
    await backend.complete(result("t1", "w1", 1, ResultStatus.PROGRESS))
    await backend.complete(result("t1", "w1", 1, ResultStatus.SUCCEEDED))

    first = await backend.receive_results("orch", max_count=2)
    rest = await backend.receive_results("orch", max_count=2)

    assert [m.result.status for m in first + rest] == [
        ResultStatus.STARTED,
        ResultStatus.PROGRESS,
        ResultStatus.SUCCEEDED,
    ]
    assert len({m.id for m in first + rest}) == 3


async def test_receive_results_blocks_until_one_arrives(with_task: Backend) -> None:
    backend = with_task

    async def report_later() -> None:
        await asyncio.sleep(0.05)
        await backend.complete(result("t1", "w1", 1))

    reporter = asyncio.create_task(report_later())
    got = await backend.receive_results("orch", block_s=5.0)
    await reporter

    assert [m.result.task_id for m in got] == ["t1"]
    assert await backend.receive_results("orch", block_s=0.1) == []


async def test_each_result_goes_to_one_consumer(backend: Backend) -> None:
    await backend.register(profile("w1", slots=4))
    for i in range(4):
        await dispatched(backend, f"t{i}")
        assert await backend.complete(result(f"t{i}"))

    a = await backend.receive_results("a", max_count=2)
    b = await backend.receive_results("b", max_count=10)

    assert len(a) == 2 and len(b) == 2
    assert {m.result.task_id for m in a} | {m.result.task_id for m in b} == {"t0", "t1", "t2", "t3"}
    assert await backend.receive_results("a") == []


async def test_unacked_results_are_redelivered_after_restart(
    connect: Connect, backend: Backend
) -> None:
    # Given a consumer that took three results and acked only one before it died
    taken = await reported(backend, 3, consumer="orch-1")
    await backend.ack_results([taken[0].id])
    assert await backend.receive_results("orch-1") == []

    # When it restarts (a new client) and reads again under the same consumer name
    restarted = await connect()
    redelivered: list[str] = []
    for _ in range(10):
        batch = await restarted.receive_results("orch-1", max_count=1)
        if not batch:
            break
        redelivered += [m.id for m in batch]

    # Then it gets the two unacked results again, and nothing once they are acked
    assert redelivered == [taken[1].id, taken[2].id]
    await restarted.ack_results(redelivered)
    again = await connect()
    assert await again.receive_results("orch-1") == []
    # Another consumer never sees results taken by orch-1
    assert await again.receive_results("orch-2") == []


async def test_results_a_dead_consumer_left_unacked_are_claimed(backend: Backend) -> None:
    # Given replica A took a result and died without acking it
    await backend.register(profile("w1"))
    await dispatched(backend, "t1", "w1")
    assert await backend.complete(result("t1", "w1", 1))
    taken = await backend.receive_results("replica-a", 10, block_s=1)
    assert [m.result.task_id for m in taken] == ["t1"]
    # Then nobody else gets it at once
    assert await backend.receive_results("replica-b", 10, block_s=0.1) == []

    # When replica B asks once the claim delay has passed, it gets that result
    await asyncio.sleep(CONTRACT_CLAIM_AFTER_S + 0.1)
    claimed = await _receive_soon(backend, "replica-b")
    assert [m.result.task_id for m in claimed] == ["t1"]
    await backend.ack_results([m.id for m in claimed])
    assert await _receive_soon(backend, "replica-c", attempts=2) == []


async def _receive_soon(backend: Backend, consumer: str, attempts: int = 4) -> list[ResultMessage]:
    for _ in range(attempts):  # the Redis backend claims at most once a second per client
        got = await backend.receive_results(consumer, 10, block_s=0.3)
        if got:
            return got
        await asyncio.sleep(0.4)
    return []


async def test_receive_results_acknowledges_what_it_is_given_first(
    connect: Connect, backend: Backend
) -> None:
    # Given a consumer that applied two results and hands their ids to its next read
    applied = [m.id for m in await reported(backend, 2, consumer="orch-1")]
    await dispatched(backend, "t2")
    assert await backend.complete(result("t2"))

    # When it reads again with them as ``ack`` (twice: the fast path follows the first)
    later = await backend.receive_results("orch-1", ack=applied[:1])
    assert [m.result.task_id for m in later] == ["t2"]
    assert await backend.receive_results("orch-1", block_s=0.1, ack=applied[1:]) == []

    # Then after a restart only the result it never acknowledged comes back
    restarted = await connect()
    assert [m.id for m in await restarted.receive_results("orch-1")] == [later[0].id]
