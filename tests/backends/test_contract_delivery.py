"""Contract: reserve_and_send, receive, ack, reclaim, release."""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.builders import profile
from worldpool.backends import Backend
from worldpool.errors import ReservationError
from worldpool.models import WorkerState, WorkerStatus


async def running(backend: Backend, worker_id: str = "w1") -> int:
    worker = await backend.get_worker(worker_id)
    assert worker is not None
    return worker.state.running


async def test_reserve_takes_a_slot_and_delivers_the_envelope(backend: Backend) -> None:
    await backend.register(profile("w1", slots=2))

    delivery_id = await backend.reserve_and_send("w1", "t1", b'{"task_id": "t1"}')

    assert await running(backend) == 1
    [delivery] = await backend.receive("w1")
    assert delivery.id == delivery_id
    assert delivery.data == b'{"task_id": "t1"}'


async def test_reserving_the_same_task_twice_takes_one_slot(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    first = await backend.reserve_and_send("w1", "t1", b"a")
    second = await backend.reserve_and_send("w1", "t1", b"b")

    assert first != second
    assert await running(backend) == 1
    assert [d.data for d in await backend.receive("w1", max_count=10)] == [b"a", b"b"]


@pytest.mark.parametrize("why", ["full", "offline", "draining", "unknown"])
async def test_reserve_refused_changes_nothing(backend: Backend, why: str) -> None:
    await backend.register(profile("w1", slots=1))
    await backend.reserve_and_send("w1", "t1", b"first")
    worker_id = "w1"
    if why == "full":
        pass
    elif why == "offline":
        await backend.mark_offline("w1")
    elif why == "draining":
        await backend.heartbeat(WorkerState(worker_id="w1", status=WorkerStatus.DRAINING))
    else:
        worker_id = "ghost"
    if why != "full":
        assert await backend.release("w1", "t1")  # a free slot: only the status refuses

    with pytest.raises(ReservationError) as caught:
        await backend.reserve_and_send(worker_id, "t2", b"second")

    assert caught.value.worker_id == worker_id
    assert await running(backend) == (1 if why == "full" else 0)
    assert [d.data for d in await backend.receive("w1", max_count=10)] == [b"first"]
    assert await backend.get_worker("ghost") is None


async def test_concurrent_reserves_never_exceed_capacity(backend: Backend) -> None:
    await backend.register(profile("w1", slots=3))

    outcomes = await asyncio.gather(
        *(backend.reserve_and_send("w1", f"t{i}", b"x") for i in range(50)),
        return_exceptions=True,
    )

    won = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, ReservationError)]
    assert len(won) == 3
    assert len(refused) == 47
    assert await running(backend) == 3
    assert len(await backend.receive("w1", max_count=100)) == 3


async def test_receive_respects_max_count_and_order(backend: Backend) -> None:
    await backend.register(profile("w1", slots=5))
    ids = [await backend.reserve_and_send("w1", f"t{i}", f"{i}".encode()) for i in range(5)]

    first = await backend.receive("w1", max_count=2)
    rest = await backend.receive("w1", max_count=10)

    assert [d.id for d in first + rest] == ids
    assert await backend.receive("w1") == []


async def test_receive_blocks_until_a_delivery_arrives(backend: Backend) -> None:
    await backend.register(profile("w1"))

    async def send_later() -> None:
        await asyncio.sleep(0.05)
        await backend.reserve_and_send("w1", "t1", b"late")

    sender = asyncio.create_task(send_later())
    got = await backend.receive("w1", block_s=5.0)
    await sender

    assert [d.data for d in got] == [b"late"]


async def test_receive_returns_empty_after_block_s(backend: Backend) -> None:
    await backend.register(profile("w1"))
    assert await backend.receive("w1", block_s=0.1) == []


async def test_queues_are_per_worker(backend: Backend) -> None:
    await backend.register(profile("w1"))
    await backend.register(profile("w2"))
    await backend.reserve_and_send("w2", "t1", b"for w2")

    assert await backend.receive("w1") == []
    assert [d.data for d in await backend.receive("w2")] == [b"for w2"]


async def test_reclaim_returns_unacked_and_untaken_and_frees_all_slots(backend: Backend) -> None:
    # Given three deliveries: one acked, one taken but unacked, one never taken
    await backend.register(profile("w1", slots=3))
    acked = await backend.reserve_and_send("w1", "t1", b"1")
    taken = await backend.reserve_and_send("w1", "t2", b"2")
    [d1, d2] = await backend.receive("w1", max_count=2)
    await backend.ack("w1", acked)
    untaken = await backend.reserve_and_send("w1", "t3", b"3")
    assert await running(backend) == 3

    # When the worker is declared dead and reclaimed
    reclaimed = await backend.reclaim("w1")

    # Then the unacknowledged ones come back, in send order, and every slot is free
    assert [d.id for d in reclaimed] == [taken, untaken]
    assert [d.data for d in reclaimed] == [b"2", b"3"]
    assert {d1.id, d2.id} == {acked, taken}
    assert await running(backend) == 0
    assert await backend.reclaim("w1") == []
    assert await backend.receive("w1", max_count=10) == []


async def test_ack_of_unknown_ids_is_ignored(backend: Backend) -> None:
    await backend.register(profile("w1"))
    delivery_id = await backend.reserve_and_send("w1", "t1", b"x")
    await backend.receive("w1")

    await backend.ack("w1", "0-1")
    await backend.ack("ghost", delivery_id)
    await backend.ack("w1", delivery_id)
    await backend.ack("w1", delivery_id)

    assert await backend.reclaim("w1") == []


async def test_reclaim_of_unknown_worker_is_empty(backend: Backend) -> None:
    assert await backend.reclaim("ghost") == []


async def test_release_gives_back_one_slot(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    await backend.reserve_and_send("w1", "t1", b"x")

    assert await backend.release("w1", "t1") is True
    assert await backend.release("w1", "t1") is False
    assert await backend.release("ghost", "t1") is False
    assert await running(backend) == 0
    await backend.reserve_and_send("w1", "t2", b"y")  # the slot is usable again
    assert await running(backend) == 1
