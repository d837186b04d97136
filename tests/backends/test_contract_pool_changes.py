"""Contract: the pool read by its changes (``pool_changes``) and workers read by id."""

from __future__ import annotations

from tests.backends.builders import dispatched, profile
from worldpool.backends import Backend
from worldpool.models import WorkerState, WorkerStatus


async def test_a_first_read_is_the_whole_pool(backend: Backend) -> None:
    for worker_id in ("a", "b"):
        await backend.register(profile(worker_id))

    changes = await backend.pool_changes(None)

    assert changes.full
    assert sorted(w.id for w in changes.workers) == ["a", "b"]
    assert changes.gone == []


async def test_nothing_changed_reads_nothing(backend: Backend) -> None:
    await backend.register(profile("a"))
    first = await backend.pool_changes(None)

    again = await backend.pool_changes(first.cursor)

    assert not again.full
    assert again.workers == []
    assert again.gone == []


async def test_registration_and_offline_are_changes(backend: Backend) -> None:
    await backend.register(profile("a"))
    cursor = (await backend.pool_changes(None)).cursor

    await backend.register(profile("b", slots=5))
    await backend.mark_offline("a")
    changes = await backend.pool_changes(cursor)

    got = {w.id: w for w in changes.workers}
    assert set(got) == {"a", "b"}
    assert got["a"].state.status is WorkerStatus.OFFLINE
    assert got["b"].profile.max_concurrency == 5
    assert (await backend.pool_changes(changes.cursor)).workers == []


async def test_a_plain_heartbeat_is_heard_but_is_no_change(backend: Backend) -> None:
    await backend.register(profile("a"))
    await backend.heartbeat(WorkerState(worker_id="a", heartbeat_seq=1))  # its first state
    cursor = (await backend.pool_changes(None)).cursor
    before = await backend.now()

    await backend.heartbeat(WorkerState(worker_id="a", heartbeat_seq=2))
    changes = await backend.pool_changes(cursor)

    assert changes.workers == []  # the counter moved; nothing routing reads did
    [(worker_id, at)] = [h for h in changes.heartbeats if h[1] >= before]
    assert worker_id == "a"
    assert at >= before


async def test_a_heartbeat_that_changes_routing_state_is_a_change(backend: Backend) -> None:
    await backend.register(profile("a"))
    await backend.heartbeat(WorkerState(worker_id="a"))
    cursor = (await backend.pool_changes(None)).cursor

    await backend.heartbeat(WorkerState(worker_id="a", status=WorkerStatus.DRAINING))
    draining = await backend.pool_changes(cursor)
    await backend.heartbeat(
        WorkerState(worker_id="a", status=WorkerStatus.DRAINING, sticky_keys=["wf-1"])
    )
    sticky = await backend.pool_changes(draining.cursor)

    assert [w.state.status for w in draining.workers] == [WorkerStatus.DRAINING]
    assert [w.state.sticky_keys for w in sticky.workers] == [["wf-1"]]


async def test_get_workers_reads_current_copies_in_order(backend: Backend) -> None:
    await backend.register(profile("a", slots=3))
    await backend.register(profile("b"))
    await dispatched(backend, "t1", "a")

    found = await backend.get_workers(["b", "nope", "a"])

    assert [w.id if w else None for w in found] == ["b", None, "a"]
    assert found[2] is not None and found[2].state.running == 1
