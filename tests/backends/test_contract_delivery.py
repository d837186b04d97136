"""Contract: the reservation a dispatch makes, receive, ack, reclaim, release."""

from __future__ import annotations

import asyncio

import pytest

from tests.backends.builders import dispatched, profile, send, slots_held, worker_of
from worldpool.backends import Backend
from worldpool.backends.base import Delivery
from worldpool.models import WorkerState, WorkerStatus


async def sent(backend: Backend, worker_id: str, task_id: str, envelope: bytes) -> str:
    outcome = await send(backend, worker_id, task_id, envelope)
    assert outcome.sent, outcome.reason
    return outcome.delivery_id


async def test_dispatch_takes_a_slot_and_delivers_the_envelope(backend: Backend) -> None:
    await backend.register(profile("w1", slots=2))

    delivery_id = await sent(backend, "w1", "t1", b'{"task_id": "t1"}')

    assert await slots_held(backend) == 1
    [delivery] = await backend.receive("w1")
    assert delivery == Delivery(id=delivery_id, data=b'{"task_id": "t1"}', task_id="t1")


async def test_dispatching_the_same_task_twice_takes_one_slot(backend: Backend) -> None:
    await backend.register(profile("w1", slots=1))
    first = await sent(backend, "w1", "t1", b"a")
    second = await sent(backend, "w1", "t1", b"b")

    assert first != second
    assert await slots_held(backend) == 1
    assert [d.data for d in await backend.receive("w1", max_count=10)] == [b"a", b"b"]


@pytest.mark.parametrize("why", ["full", "offline", "draining", "unknown"])
async def test_refused_reservation_changes_nothing(backend: Backend, why: str) -> None:
    await backend.register(profile("w1", slots=1))
    await sent(backend, "w1", "t1", b"first")
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

    outcome = await send(backend, worker_id, "t2", b"second")

    expected = {
        "full": "all 1 slots are taken",
        "offline": "the worker is offline",
        "draining": "the worker is draining",
        "unknown": "no such worker is registered",
    }
    assert (outcome.sent, outcome.conflict, outcome.reason) == (False, False, expected[why])
    assert await slots_held(backend) == (1 if why == "full" else 0)
    assert [d.data for d in await backend.receive("w1", max_count=10)] == [b"first"]
    assert await worker_of(backend, "ghost") is None


async def test_concurrent_dispatches_never_exceed_capacity(backend: Backend) -> None:
    await backend.register(profile("w1", slots=3))

    outcomes = await asyncio.gather(*(send(backend, "w1", f"t{i}", b"x") for i in range(50)))

    assert sum(o.sent for o in outcomes) == 3
    assert [o.reason for o in outcomes if not o.sent] == ["all 3 slots are taken"] * 47
    assert await slots_held(backend) == 3
    assert len(await backend.receive("w1", max_count=100)) == 3


async def test_receive_respects_max_count_and_order(backend: Backend) -> None:
    await backend.register(profile("w1", slots=5))
    ids = [await sent(backend, "w1", f"t{i}", f"{i}".encode()) for i in range(5)]

    first = await backend.receive("w1", max_count=2)
    rest = await backend.receive("w1", max_count=10)

    assert [d.id for d in first + rest] == ids
    assert [d.task_id for d in first + rest] == [f"t{i}" for i in range(5)]
    assert await backend.receive("w1") == []


async def test_receive_blocks_until_a_delivery_arrives(backend: Backend) -> None:
    await backend.register(profile("w1"))

    async def send_later() -> None:
        await asyncio.sleep(0.05)
        await sent(backend, "w1", "t1", b"late")

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
    await sent(backend, "w2", "t1", b"for w2")

    assert await backend.receive("w1") == []
    assert [d.data for d in await backend.receive("w2")] == [b"for w2"]


async def test_reclaim_returns_unacked_and_untaken_and_frees_all_slots(backend: Backend) -> None:
    # Given three deliveries: one acked, one taken but unacked, one never taken
    await backend.register(profile("w1", slots=3))
    acked = await sent(backend, "w1", "t1", b"1")
    taken = await sent(backend, "w1", "t2", b"2")
    [d1, d2] = await backend.receive("w1", max_count=2)
    await backend.ack("w1", acked)
    untaken = await sent(backend, "w1", "t3", b"3")
    assert await slots_held(backend) == 3

    # When the worker is declared dead and reclaimed
    reclaimed = await backend.reclaim("w1")

    # Then the unacknowledged ones come back whole (as receive returns them), in send
    # order, and every slot is free
    assert reclaimed == [
        Delivery(id=taken, data=b"2", task_id="t2"),
        Delivery(id=untaken, data=b"3", task_id="t3"),
    ]
    assert {d1.id, d2.id} == {acked, taken}
    assert d2 == reclaimed[0]
    assert await slots_held(backend) == 0
    assert await backend.reclaim("w1") == []
    assert await backend.receive("w1", max_count=10) == []


async def test_ack_of_unknown_ids_is_ignored(backend: Backend) -> None:
    await backend.register(profile("w1"))
    delivery_id = await sent(backend, "w1", "t1", b"x")
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
    await sent(backend, "w1", "t1", b"x")

    assert await backend.release("w1", "t1") is True
    assert await backend.release("w1", "t1") is False
    assert await backend.release("ghost", "t1") is False
    assert await slots_held(backend) == 0
    await sent(backend, "w1", "t2", b"y")  # the slot is usable again
    assert await slots_held(backend) == 1


async def test_receive_taken_gives_back_what_a_lost_read_took(backend: Backend) -> None:
    await backend.register(profile("w1", slots=4))
    first = await dispatched(backend, "t1", "w1")
    await dispatched(backend, "t2", "w1")
    [took] = await backend.receive("w1", 1)  # its answer "lost": the worker never saw it
    assert took.id == first
    again = await backend.receive("w1", 10, taken=True)
    assert [d.id for d in again] == [first] and again[0].task_id == "t1"
    assert [d.task_id for d in await backend.receive("w1", 10)] == ["t2"]  # new ones as before
    await backend.ack("w1", first)
    assert [d.task_id for d in await backend.receive("w1", 10, taken=True)] == ["t2"]
