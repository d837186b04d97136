"""Concurrency as configured: sync handlers get one thread per slot, a task is RUNNING only
while its handler runs, and its execution timeout counts from then."""

from __future__ import annotations

import asyncio
import threading
import time

from worldpool.models import TaskSpec, TaskStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext

SLOTS = 20


class Gauge:
    """How many handlers run at once, at most."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def sleep(self, ctx: TaskContext) -> str:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(float(ctx.payload["sleep_s"]))  # type: ignore[arg-type]
        with self._lock:
            self.now -= 1
        return ctx.task_id


async def test_sync_handlers_run_as_many_at_once_as_the_worker_has_slots() -> None:
    gauge = Gauge()
    workers = [make_worker("w1", handlers=["sleep"], max_concurrency=SLOTS)]
    async with EmbeddedPool({"sleep": gauge.sleep}, workers) as pool:
        specs = [
            TaskSpec(id=f"c-{i}", handler="sleep", payload={"sleep_s": 1.0}, execution_timeout_s=3)
            for i in range(SLOTS)
        ]
        for spec in specs:
            await pool.submit(spec)
        records = [await pool.orchestrator.wait_task(s.id, 30) for s in specs]
    assert [r.status for r in records] == [TaskStatus.SUCCEEDED] * SLOTS
    assert gauge.peak == SLOTS  # not Python's default pool (min(32, cores + 4))


async def test_a_task_waiting_for_a_busy_thread_is_not_running_and_its_timeout_waits() -> None:
    release = threading.Event()

    def stuck_or_quick(ctx: TaskContext) -> str:
        if ctx.payload.get("stuck"):
            release.wait(10)  # ignores ctx.cancelled: its thread stays busy past its timeout
        else:
            time.sleep(0.6)
        return ctx.task_id

    workers = [make_worker("w1", handlers=["h"], max_concurrency=1)]
    async with EmbeddedPool({"h": stuck_or_quick}, workers) as pool:
        stuck = TaskSpec(id="stuck", handler="h", payload={"stuck": True}, execution_timeout_s=0.5)
        stuck.retry.max_retries = 0
        await pool.submit(stuck)
        assert (await pool.orchestrator.wait_task("stuck", 10)).status is TaskStatus.FAILED
        quick = TaskSpec(id="quick", handler="h", execution_timeout_s=1.0)
        await pool.submit(quick)
        await asyncio.sleep(1.5)  # longer than its timeout; it cannot start yet
        waiting = await pool.orchestrator.get_task("quick")
        assert waiting.status is not TaskStatus.RUNNING
        released_at = time.time()
        release.set()
        record = await pool.orchestrator.wait_task("quick", 10)
    assert record.status is TaskStatus.SUCCEEDED, record.error
    assert record.attempts[-1].started_at is not None
    assert record.attempts[-1].started_at >= released_at - 0.05
