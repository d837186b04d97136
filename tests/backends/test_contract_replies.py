"""Contract: the final record of a task submitted with ``reply_to`` is pushed to that
client's reply stream by the write that ends it, and only then."""

from __future__ import annotations

import asyncio

from tests.backends.builders import task
from worldpool.backends import Backend
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
