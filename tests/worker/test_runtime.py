"""The worker runtime: bad envelopes, drain, zombies."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.backends.builders import send_raw, worker_of
from worldpool.errors import TaskFailedError
from worldpool.models import TaskSpec, TaskStatus, WorkerStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext


def echo(ctx: TaskContext) -> dict[str, object]:
    return dict(ctx.payload)


async def _send_raw(pool: EmbeddedPool, worker_id: str, task_id: str, data: bytes) -> None:
    await send_raw(pool.backend, worker_id, task_id, data)


async def test_bad_envelopes_are_dead_lettered_and_the_worker_carries_on() -> None:
    async with EmbeddedPool({"echo": echo}) as pool:
        await _send_raw(pool, "worker-1", "junk-1", b"{not json")
        await _send_raw(pool, "worker-1", "junk-2", orjson.dumps({"task_id": "x"}))
        await _send_raw(pool, "worker-1", "junk-3", b"x" * (pool.settings.max_envelope_bytes + 1))
        await _send_raw(
            pool,
            "worker-1",
            "junk-4",
            orjson.dumps({"task_id": "junk-4", "attempt": 1, "handler": "rm_rf"}),
        )
        record = await pool.run_task(TaskSpec(handler="echo", payload={"ok": True}))
        letters = await pool.backend.list_dead_letters()
    assert record.result == {"ok": True}
    codes = sorted(letter.code for letter in letters if letter.worker_id == "worker-1")
    assert codes == ["bad_shape", "malformed_json", "oversized", "unknown_handler"]


async def test_signed_deployment_rejects_unsigned_envelopes() -> None:
    from worldpool.config import Settings

    settings = Settings(heartbeat_s=0.1, secret="k")
    async with EmbeddedPool({"echo": echo}, settings=settings) as pool:
        await _send_raw(
            pool,
            "worker-1",
            "forged",
            orjson.dumps({"task_id": "forged", "attempt": 1, "handler": "echo"}),
        )
        record = await pool.run_task(TaskSpec(handler="echo", payload={"a": 1}))
        letters = await pool.backend.list_dead_letters()
    assert record.result == {"a": 1}  # the orchestrator signs; the worker checks
    assert [letter.code for letter in letters] == ["unsigned"]


async def test_drain_hands_back_running_work_which_finishes_elsewhere() -> None:
    gate = asyncio.Event()

    async def wait_gate(ctx: TaskContext) -> str:
        if ctx.worker.id == "w-a":
            await gate.wait()
        return ctx.worker.id

    workers = [
        make_worker("w-a", handlers=["wait_gate"], cost_per_hour=0.1),
        make_worker("w-b", handlers=["wait_gate"], cost_per_hour=9.0),
    ]
    async with EmbeddedPool({"wait_gate": wait_gate}, workers) as pool:
        spec = TaskSpec(handler="wait_gate")
        await pool.submit(spec)
        for _ in range(100):
            if (await pool.orchestrator.get_task(spec.id)).status is TaskStatus.RUNNING:
                break
            await asyncio.sleep(0.02)
        await pool.workers["w-a"].stop(drain=True, grace_s=0.1)
        record = await pool.orchestrator.wait_task(spec.id, 10)
        w_a = await worker_of(pool.backend, "w-a")
    assert record.status is TaskStatus.SUCCEEDED and record.result == "w-b"
    assert w_a is not None and w_a.state.status is WorkerStatus.OFFLINE


def clones_a_workspace(ctx: TaskContext) -> str:
    ctx.advertise("workspace:" + "a" * 40, "workspace:" + "a" * 40)  # once is enough
    raise RuntimeError("fetched, then failed")  # what it fetched is on disk all the same


async def test_what_a_handler_fetched_is_advertised_with_the_next_heartbeat() -> None:
    async with EmbeddedPool({"clone": clones_a_workspace}) as pool:
        spec = TaskSpec(handler="clone")
        spec.retry.max_retries = 0
        with pytest.raises(TaskFailedError, match="fetched, then failed"):
            await pool.run_task(spec)
        for _ in range(100):  # bounded: a heartbeat or two (0.1 s each in the pool)
            worker = await worker_of(pool.backend, "worker-1")
            assert worker is not None
            if worker.state.cached:
                break
            await asyncio.sleep(0.05)
    assert worker.state.cached == ["workspace:" + "a" * 40]
