"""ctx.once in one process: a handed-back sync handler that ignores its stop runs on in its
thread, but its effect is fenced and its late report dropped; the effect is applied once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from worldpool.errors import HandlerError
from worldpool.models import TaskSpec, TaskStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.effects import FencedError
from worldpool.worker.handlers import TaskContext


async def test_a_handed_back_handler_that_ignores_its_stop_cannot_apply_its_effect() -> None:
    ledger: list[tuple[str, int]] = []
    fenced: list[str] = []
    lock = threading.Lock()

    def pay(ctx: TaskContext) -> object:
        if ctx.worker.id == "w-a":
            time.sleep(1.0)  # deaf to ctx.cancelled

        def apply(token: int) -> str:
            with lock:
                ledger.append((ctx.worker.id, token))
            return ctx.worker.id

        try:
            return ctx.once("pay", apply)
        except FencedError:
            fenced.append(ctx.worker.id)
            raise

    workers = [
        make_worker("w-a", handlers=["pay"], cost_per_hour=0.1),
        make_worker("w-b", handlers=["pay"], cost_per_hour=9.0),
    ]
    async with EmbeddedPool({"pay": pay}, workers) as pool:
        spec = TaskSpec(handler="pay")
        await pool.submit(spec)
        for _ in range(100):
            if (await pool.orchestrator.get_task(spec.id)).status is TaskStatus.RUNNING:
                break
            await asyncio.sleep(0.02)
        await pool.workers["w-a"].stop(drain=True, grace_s=0.1)
        record = await pool.orchestrator.wait_task(spec.id, 10)
        await asyncio.sleep(1.2)  # w-a's thread wakes and tries its effect
        final = await pool.orchestrator.get_task(spec.id)
    assert record.status is TaskStatus.SUCCEEDED and record.result == "w-b"
    assert ledger == [("w-b", 2)]  # once, with the second attempt's fencing token
    assert fenced == ["w-a"]
    assert final.result == "w-b" and len(final.attempts) == 2  # the late report changed nothing


async def test_once_answers_later_attempts_with_the_value_of_the_first() -> None:
    applied: list[int] = []

    def flaky(ctx: TaskContext) -> object:
        value = ctx.once("charge", lambda token: applied.append(token) or {"charged": token})
        if ctx.attempt == 1:
            raise HandlerError("failed after the effect")  # retried
        return value

    async with EmbeddedPool({"flaky": flaky}) as pool:
        spec = TaskSpec(handler="flaky")
        spec.retry.backoff_initial_s = 0.01
        record = await pool.run_task(spec)
    assert applied == [1] and record.result == {"charged": 1} and record.attempt == 2


async def test_once_from_an_async_handler_must_be_awaited() -> None:
    async def wrong(ctx: TaskContext) -> object:
        return ctx.once("x", lambda token: token)

    async def right(ctx: TaskContext) -> object:
        return await ctx.once_async("x", lambda token: token)

    async with EmbeddedPool({"wrong": wrong, "right": right}) as pool:
        spec = TaskSpec(handler="wrong")
        spec.retry.max_retries = 0
        with pytest.raises(Exception, match="once_async"):
            await pool.run_task(spec)
        assert (await pool.run_task(TaskSpec(handler="right"))).result == 1
