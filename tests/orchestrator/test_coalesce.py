"""Coalescer: concurrent single calls become batch calls; results and errors reach callers."""

from __future__ import annotations

import asyncio

import pytest

from worldpool.orchestrator.coalesce import Coalescer


async def test_concurrent_calls_share_batches_and_get_their_own_output() -> None:
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0)
        return [i * 2 for i in items]

    coalesce: Coalescer[int, int] = Coalescer(double)
    outputs = await asyncio.gather(*(coalesce(i) for i in range(10)))

    assert outputs == [i * 2 for i in range(10)]
    assert sorted(i for batch in batches for i in batch) == list(range(10))
    assert len(batches) < 10
    assert await coalesce(7) == 14  # a lone call later still works


async def test_a_failed_batch_fails_its_callers_only() -> None:
    async def fail_odd_batches(items: list[int]) -> list[int]:
        if items[0] % 2:
            raise ValueError(f"batch starting {items[0]}")
        return items

    coalesce: Coalescer[int, int] = Coalescer(fail_odd_batches, max_batch=1)
    results = await asyncio.gather(coalesce(1), coalesce(2), return_exceptions=True)

    assert isinstance(results[0], ValueError)
    assert results[1] == 2


async def test_a_cancelled_caller_does_not_cancel_a_shared_batch() -> None:
    gates = [asyncio.Event(), asyncio.Event()]  # one per batch
    batches: list[list[int]] = []

    async def slow(items: list[int]) -> list[int]:
        batches.append(items)
        await gates[len(batches) - 1].wait()
        return items

    coalesce: Coalescer[int, int] = Coalescer(slow)
    alone = asyncio.create_task(coalesce(1))  # nothing in flight: sent at once, alone
    await asyncio.sleep(0)
    second = asyncio.create_task(coalesce(2))  # these two wait and go out together
    third = asyncio.create_task(coalesce(3))
    await asyncio.sleep(0)
    gates[0].set()
    assert await alone == 1
    for _ in range(10):  # bounded: until the shared batch is in flight
        if len(batches) == 2:
            break
        await asyncio.sleep(0)
    second.cancel()
    gates[1].set()
    assert await third == 3
    with pytest.raises(asyncio.CancelledError):
        await second
    assert batches == [[1], [2, 3]]


async def test_a_lone_call_is_sent_from_its_callers_task_and_cancelled_with_it() -> None:
    release = asyncio.Event()
    seen: list[int] = []
    tasks: list[asyncio.Task[object] | None] = []

    async def slow(items: list[int]) -> list[int]:
        tasks.append(asyncio.current_task())
        await release.wait()
        seen.extend(items)
        return items

    coalesce: Coalescer[int, int] = Coalescer(slow)
    first = asyncio.create_task(coalesce(1))
    await asyncio.sleep(0)
    second = asyncio.create_task(coalesce(2))  # queued behind the lone call
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == 2, "the queued call still goes out"
    assert seen == [2]
    assert tasks[0] is first
