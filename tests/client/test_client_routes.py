"""A client process routes its own submits: sent in their create while the pending queue
is empty, queued behind waiting work otherwise; results pushed to it, its slots given back
in its snapshot when they come (memory backend, loops driven by hand)."""

from __future__ import annotations

import asyncio
from typing import Any

from worldpool import Client
from worldpool.backends.base import PushedRecord
from worldpool.backends.memory import MemoryBackend
from worldpool.client.handles import TaskHandle
from worldpool.embedded import FAST_SETTINGS, make_worker
from worldpool.lifecycle import apply_result
from worldpool.models import ResultStatus, TaskResult, TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator


async def _client(backend: MemoryBackend, slots: int = 4) -> Client:
    await backend.register(make_worker("w1", handlers=["noop"], max_concurrency=slots))
    return Client(backend, Orchestrator(backend, FAST_SETTINGS, submit_only=True))


async def _finish(backend: MemoryBackend, task_id: str) -> None:
    """The worker's report applied, as ``serve`` would."""
    record = await backend.get_task(task_id)
    assert record is not None
    report = TaskResult(
        task_id=task_id,
        attempt=record.attempt,
        worker_id="w1",
        status=ResultStatus.SUCCEEDED,
        value={"ok": 1},
    )
    done = apply_result(record, report, await backend.now())
    assert done is not None and await backend.put_task(done, expect_version=record.version)


async def test_a_submit_goes_straight_to_a_worker_and_its_result_is_pushed() -> None:
    backend = MemoryBackend(FAST_SETTINGS)
    client = await _client(backend)
    try:
        handle = await client.submit("noop")
        record = await backend.get_task(handle.task_id)
        assert record is not None and record.status is TaskStatus.DISPATCHED  # no pass ran
        assert [d.task_id for d in await backend.receive("w1", 10)] == [handle.task_id]
        assert handle.pushed and record.spec.reply_to == client.client_id
        view = client.orchestrator.pool_view
        assert view.worker("w1").state.running == 1

        await _finish(backend, handle.task_id)
        assert await handle.result(timeout_s=5) == {"ok": 1}
        assert client.follower._task is None, "woken by its reply, not the event log"
        assert view.worker("w1").state.running == 0, "the slot is free again in its view"
    finally:
        await client.aclose()


async def test_a_submit_queues_behind_waiting_work_and_then_stops_routing() -> None:
    backend = MemoryBackend(FAST_SETTINGS)
    client = await _client(backend)
    try:
        waiting = Orchestrator(backend, FAST_SETTINGS)
        gpu = TaskSpec(handler="noop", capabilities=["x-gpu-render"], priority=5)
        await waiting.submit(gpu)  # nobody has the GPU: it waits in the queue
        decisions: list[str] = []
        router = client.orchestrator.router
        decide = router.decide
        router.decide = lambda ctx, *a, **k: decisions.append(ctx.task.id) or decide(ctx, *a, **k)  # type: ignore[method-assign]

        first = await client.submit("noop")
        second = await client.submit("noop")
        stored = [await backend.get_task(h.task_id) for h in (first, second)]
        assert [r.status for r in stored if r] == [TaskStatus.PENDING, TaskStatus.PENDING]
        assert await backend.list_pending() == [gpu.id, first.task_id, second.task_id]
        assert decisions == [first.task_id], "routed once; the next submit just queues"
        assert await backend.receive("w1", 10, block_s=0.01) == []
    finally:
        await client.aclose()


async def test_without_the_secret_a_client_leaves_signed_workers_to_serve() -> None:
    backend = MemoryBackend(FAST_SETTINGS)
    profile = make_worker("w1", handlers=["noop"]).model_copy(
        update={"credential_proof": "proof-of-its-key"}
    )
    await backend.register(profile)
    client = Client(backend, Orchestrator(backend, FAST_SETTINGS, submit_only=True))
    try:
        handle = await client.submit("noop")
        record = await backend.get_task(handle.task_id)
        assert record is not None and record.status is TaskStatus.PENDING
        assert await backend.list_pending() == [handle.task_id]
    finally:
        await client.aclose()


async def test_a_retried_task_is_not_answered_by_its_old_end() -> None:
    backend = MemoryBackend(FAST_SETTINGS)
    client = await _client(backend)
    try:
        handle = await client.submit("noop")
        record = await backend.get_task(handle.task_id)
        assert record is not None
        report = TaskResult(
            task_id=handle.task_id,
            attempt=record.attempt,
            worker_id="w1",
            status=ResultStatus.FAILED,
            error="boom",
            retryable=False,
        )
        failed = apply_result(record, report, await backend.now())
        assert failed is not None and failed.status is TaskStatus.FAILED
        assert await backend.put_task(failed, expect_version=record.version)
        assert await client.replies.changed(handle.task_id, 5)  # pushed, never taken

        assert await handle.retry()
        again = await handle.status()
        assert again.status is TaskStatus.PENDING
        assert client.replies.take(handle.task_id) is None
    finally:
        await client.aclose()


async def _ended(backend: MemoryBackend, client: Client) -> TaskHandle[Any]:
    """A task submitted by ``client``, ended, its final record pushed (not yet taken)."""
    handle = await client.submit("noop")
    await _finish(backend, handle.task_id)
    assert await client.replies.changed(handle.task_id, 5)
    return handle


async def test_a_pushed_record_that_does_not_decode_falls_back_to_the_stored_one() -> None:
    """The reply stream is read undecoded; what a handle takes is decoded then, and an
    entry that is no record is not trusted: the handle reads the stored record instead."""
    backend = MemoryBackend(FAST_SETTINGS)
    client = await _client(backend, slots=1)
    try:
        handle = await _ended(backend, client)
        client.replies._ended[handle.task_id] = PushedRecord(handle.task_id, 99, b"{not json")
        assert client.replies.take(handle.task_id) is None
        client.replies._ended[handle.task_id] = PushedRecord(handle.task_id, 99, b"{not json")
        record = await handle.wait(timeout_s=5)
        assert record.status is TaskStatus.SUCCEEDED and record.version < 99
    finally:
        await client.aclose()


async def test_result_reads_a_pushed_success_without_decoding_the_record() -> None:
    backend = MemoryBackend(FAST_SETTINGS)
    client = await _client(backend, slots=1)
    try:
        handle = await _ended(backend, client)
        # What a Redis reply entry holds: the record's JSON, undecoded.
        stored = await backend.get_task(handle.task_id)
        assert stored is not None
        data = stored.model_dump_json(exclude={"version"}).encode()
        client.replies._ended[handle.task_id] = PushedRecord(handle.task_id, stored.version, data)
        assert await handle.result(timeout_s=5) == {"ok": 1}
        assert client.replies.take(handle.task_id) is None, "taken by result()"

        failed = PushedRecord("t", 3, b'{"status": "failed", "result": 1, "result_ref": null}')
        assert failed.succeeded_value() == (False, None)
        big = PushedRecord("t", 3, b'{"status": "succeeded", "result": null, "result_ref": {}}')
        assert big.succeeded_value() == (False, None), "a large value is fetched by the record"
        assert PushedRecord("t", 3, b"[1").succeeded_value() == (False, None)
    finally:
        await client.aclose()


async def test_submits_during_the_first_pool_read_are_queued_not_held() -> None:
    """At 10,000 workers a client's first read of the pool takes most of a second: the
    submits made meanwhile are queued (serve sends them) instead of waiting for it."""
    release = asyncio.Event()

    class SlowPool(MemoryBackend):
        async def pool_changes(self, cursor: Any) -> Any:
            await release.wait()
            return await super().pool_changes(cursor)

    backend = SlowPool(FAST_SETTINGS)
    client = await _client(backend, slots=4)
    reading = asyncio.create_task(client.orchestrator.pool_view.refresh())
    try:
        await asyncio.sleep(0)
        assert client.orchestrator.pool_view.loading
        queued = await asyncio.wait_for(client.submit("noop"), 5)
        assert (await queued.status()).status is TaskStatus.PENDING
        release.set()
        await reading
        assert not client.orchestrator.pool_view.loading
        assert await Orchestrator(backend, FAST_SETTINGS).dispatch_once() == 1  # serve's part
        sent = await client.submit("noop")
        assert (await sent.status()).status is TaskStatus.DISPATCHED, "routed by the client"
    finally:
        release.set()
        await client.aclose()
