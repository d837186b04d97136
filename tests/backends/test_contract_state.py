"""Contract: task and workflow records (compare-and-set), idempotency keys, pending queue."""

from __future__ import annotations

import asyncio

from tests.backends.builders import task
from worldpool.backends import Backend
from worldpool.models import (
    StepSpec,
    TaskSpec,
    TaskStatus,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowState,
)


def workflow(workflow_id: str = "wf-1") -> WorkflowRecord:
    step = StepSpec(name="plan", task=TaskSpec(handler="echo"))
    return WorkflowRecord(spec=WorkflowSpec(id=workflow_id, steps=[step]))


async def test_put_and_get_task_round_trip(backend: Backend) -> None:
    record = task("t1", payload={"n": 1}, priority=5)
    record.meta["vm_id"] = "vm-1"

    assert await backend.put_task(record) is True

    assert record.version == 1
    stored = await backend.get_task("t1")
    assert stored == record
    assert await backend.get_task("nope") is None


async def test_cas_with_expect_version(backend: Backend) -> None:
    record = task("t1")
    assert await backend.put_task(record, expect_version=1) is False  # missing = version 0
    assert await backend.get_task("t1") is None
    assert await backend.put_task(record, expect_version=0) is True
    assert record.version == 1

    stale = await backend.get_task("t1")
    assert stale is not None
    record.status = TaskStatus.RUNNING
    assert await backend.put_task(record, expect_version=1) is True
    assert record.version == 2

    stale.status = TaskStatus.CANCELLED
    assert await backend.put_task(stale, expect_version=stale.version) is False
    assert stale.version == 1  # a failed compare leaves the caller's record alone
    stored = await backend.get_task("t1")
    assert stored is not None
    assert (stored.status, stored.version) == (TaskStatus.RUNNING, 2)


async def test_unconditional_put_still_bumps_the_stored_version(backend: Backend) -> None:
    await backend.put_task(task("t1"))
    await backend.put_task(task("t1"))
    stored = await backend.get_task("t1")
    assert stored is not None and stored.version == 2


async def test_concurrent_cas_has_exactly_one_winner(backend: Backend) -> None:
    await backend.put_task(task("t1"))

    async def writer(i: int) -> bool:
        mine = await backend.get_task("t1")
        assert mine is not None
        mine.error = f"writer {i}"
        return await backend.put_task(mine, expect_version=1)

    outcomes = await asyncio.gather(*(writer(i) for i in range(20)))

    assert outcomes.count(True) == 1
    stored = await backend.get_task("t1")
    assert stored is not None and stored.version == 2
    assert stored.error == f"writer {outcomes.index(True)}"


async def test_stored_records_are_copies(backend: Backend) -> None:
    record = task("t1")
    await backend.put_task(record)
    record.logs.append("changed after put")
    got = await backend.get_task("t1")
    assert got is not None
    got.logs.append("changed after get")

    again = await backend.get_task("t1")
    assert again is not None and again.logs == []


async def test_get_tasks_keeps_order_and_gaps(backend: Backend) -> None:
    await backend.put_task(task("a"))
    await backend.put_task(task("b"))

    got = await backend.get_tasks(["b", "missing", "a"])

    assert [r.id if r else None for r in got] == ["b", None, "a"]
    assert await backend.get_tasks([]) == []


async def test_list_tasks_filters_by_workflow(backend: Backend) -> None:
    await backend.put_task(task("a", workflow_id="wf-1"))
    await backend.put_task(task("b", workflow_id="wf-2"))
    await backend.put_task(task("c"))

    assert {r.id for r in await backend.list_tasks()} == {"a", "b", "c"}
    assert [r.id for r in await backend.list_tasks("wf-1")] == ["a"]
    assert await backend.list_tasks("wf-none") == []


async def test_idempotency_key_binds_once(backend: Backend) -> None:
    assert await backend.claim_idempotency_key("order-42", "t1") is None
    assert await backend.claim_idempotency_key("order-42", "t2") == "t1"
    assert await backend.claim_idempotency_key("order-42", "t1") == "t1"
    assert await backend.claim_idempotency_key("order-43", "t2") is None


async def test_concurrent_idempotency_claims_have_one_winner(backend: Backend) -> None:
    outcomes = await asyncio.gather(
        *(backend.claim_idempotency_key("k", f"t{i}") for i in range(20))
    )
    winners = [i for i, bound in enumerate(outcomes) if bound is None]
    assert len(winners) == 1
    assert set(outcomes) == {None, f"t{winners[0]}"}


async def test_workflows_round_trip_with_cas(backend: Backend) -> None:
    record = workflow("wf-1")
    assert await backend.put_workflow(record, expect_version=3) is False
    assert await backend.put_workflow(record, expect_version=0) is True
    record.status = WorkflowState.IN_PROGRESS
    record.task_ids["plan"] = "t1"
    assert await backend.put_workflow(record, expect_version=1) is True
    assert await backend.put_workflow(record, expect_version=1) is False
    await backend.put_workflow(workflow("wf-2"))

    stored = await backend.get_workflow("wf-1")
    assert stored == record
    assert stored is not None and stored.version == 2
    assert await backend.get_workflow("nope") is None
    assert {w.id for w in await backend.list_workflows()} == {"wf-1", "wf-2"}


async def test_pending_orders_by_priority_then_age(backend: Backend) -> None:
    for task_id, priority in [("low", -5), ("a", 0), ("urgent", 10), ("b", 0), ("c", 0)]:
        await backend.add_pending(task_id, priority)

    assert await backend.list_pending() == ["urgent", "a", "b", "c", "low"]
    assert await backend.list_pending(limit=2) == ["urgent", "a"]


async def test_pending_is_idempotent_and_removable(backend: Backend) -> None:
    await backend.add_pending("a")
    await backend.add_pending("b")
    await backend.add_pending("a")

    assert await backend.list_pending() == ["a", "b"]
    await backend.remove_pending("a")
    await backend.remove_pending("never-added")
    assert await backend.list_pending() == ["b"]
    await backend.add_pending("a")
    assert await backend.list_pending() == ["b", "a"]


async def test_list_active_tasks_leaves_out_finished_ones(backend: Backend) -> None:
    from worldpool.models import TaskStatus

    await backend.put_task(task("running"))
    done = task("done")
    await backend.put_task(done)
    done.status = TaskStatus.SUCCEEDED
    assert await backend.put_task(done, expect_version=done.version)

    assert [r.id for r in await backend.list_active_tasks()] == ["running"]
