"""Contract: worker registry, heartbeats, OFFLINE, revoked in-flight tasks."""

from __future__ import annotations

import pytest

from tests.backends.builders import dispatched, profile, worker_of
from worldpool.backends import Backend
from worldpool.errors import NotFoundError
from worldpool.models import TaskStatus, WorkerState, WorkerStatus


async def test_register_makes_the_worker_online_with_a_fresh_heartbeat(backend: Backend) -> None:
    before = await backend.now()
    state = await backend.register(profile("w1", slots=3))
    after = await backend.now()

    assert state.worker_id == "w1"
    assert state.status is WorkerStatus.ONLINE
    assert state.running == 0
    assert before <= state.last_heartbeat <= after
    worker = await worker_of(backend, "w1")
    assert worker is not None
    assert worker.profile == profile("w1", slots=3)
    assert worker.state.status is WorkerStatus.ONLINE


async def test_unknown_worker_is_none_and_list_has_every_status(backend: Backend) -> None:
    assert await worker_of(backend, "nope") is None
    assert await backend.list_workers() == []
    for worker_id in ("a", "b", "c"):
        await backend.register(profile(worker_id))
    await backend.mark_offline("b")

    workers = {w.id: w for w in await backend.list_workers()}
    assert set(workers) == {"a", "b", "c"}
    assert workers["b"].state.status is WorkerStatus.OFFLINE


async def test_heartbeat_records_state_but_never_running(backend: Backend) -> None:
    await backend.register(profile("w1", slots=3))
    await dispatched(backend, "t1")
    before = await backend.now()

    reply = await backend.heartbeat(
        WorkerState(
            worker_id="w1",
            status=WorkerStatus.DRAINING,
            running=0,  # a worker's own count is ignored: the backend owns slots
            last_heartbeat=0.0,
            latency_ms=12.5,
            cached=["sha256:" + "a" * 64],
            sticky_keys=["wf-1"],
        )
    )

    assert reply.status is WorkerStatus.DRAINING
    assert reply.revoked == []
    assert reply.server_time >= before
    worker = await worker_of(backend, "w1")
    assert worker is not None
    assert worker.state.status is WorkerStatus.DRAINING
    assert worker.state.running == 1
    assert worker.state.latency_ms == 12.5
    assert worker.state.cached == ["sha256:" + "a" * 64]
    assert worker.state.sticky_keys == ["wf-1"]
    assert before <= worker.state.last_heartbeat <= await backend.now()


async def test_heartbeat_from_unknown_worker_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFoundError):
        await backend.heartbeat(WorkerState(worker_id="ghost"))


async def test_offline_stays_offline_until_register(backend: Backend) -> None:
    await backend.register(profile("w1"))

    assert await backend.mark_offline("w1") is True
    assert await backend.mark_offline("w1") is False
    assert await backend.mark_offline("unknown") is False

    reply = await backend.heartbeat(WorkerState(worker_id="w1", status=WorkerStatus.ONLINE))
    assert reply.status is WorkerStatus.OFFLINE
    worker = await worker_of(backend, "w1")
    assert worker is not None and worker.state.status is WorkerStatus.OFFLINE

    state = await backend.register(profile("w1"))
    assert state.status is WorkerStatus.ONLINE
    reply = await backend.heartbeat(WorkerState(worker_id="w1"))
    assert reply.status is WorkerStatus.ONLINE


async def test_reregister_replaces_profile_and_keeps_slots(backend: Backend) -> None:
    await backend.register(profile("w1", slots=2))
    await dispatched(backend, "t1")
    await backend.mark_offline("w1")

    state = await backend.register(profile("w1", slots=5))

    assert state.running == 1
    worker = await worker_of(backend, "w1")
    assert worker is not None
    assert worker.profile.max_concurrency == 5
    assert worker.state.running == 1
    assert worker.state.status is WorkerStatus.ONLINE


async def test_heartbeat_revokes_tasks_no_longer_this_workers(backend: Backend) -> None:
    # Given a worker believing it runs five tasks
    await backend.register(profile("w1", slots=5))
    for task_id in ("mine", "rerouted", "retried", "done"):
        await dispatched(backend, task_id)
    # When the orchestrator moves, retries and finishes some of them
    rerouted = await backend.get_task("rerouted")
    assert rerouted is not None
    rerouted.worker_id = "w2"
    assert await backend.put_task(rerouted, expect_version=rerouted.version)
    retried = await backend.get_task("retried")
    assert retried is not None
    retried.attempt = 2
    assert await backend.put_task(retried, expect_version=retried.version)
    done = await backend.get_task("done")
    assert done is not None
    done.status = TaskStatus.CANCELLED
    assert await backend.put_task(done, expect_version=done.version)
    # Then the heartbeat reply lists all but its own current attempt
    in_flight = {"mine": 1, "rerouted": 1, "retried": 1, "done": 1, "unknown": 1}
    reply = await backend.heartbeat(WorkerState(worker_id="w1"), in_flight)
    assert sorted(reply.revoked) == ["done", "rerouted", "retried", "unknown"]


async def test_returned_state_is_a_copy(backend: Backend) -> None:
    await backend.register(profile("w1"))
    worker = await worker_of(backend, "w1")
    assert worker is not None
    worker.state.status = WorkerStatus.OFFLINE
    worker.profile.labels["x"] = "y"

    again = await worker_of(backend, "w1")
    assert again is not None
    assert again.state.status is WorkerStatus.ONLINE
    assert again.profile.labels == {}
