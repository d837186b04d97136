"""The sweep (one replica at a time, under a lease): marks silent workers offline,
re-routes their tasks, enforces schedule-to-start, execution and heartbeat timeouts."""

from __future__ import annotations

import asyncio
import logging

from worldpool import lifecycle
from worldpool.models import Event, EventKind, TaskRecord, TaskStatus, WorkerStatus
from worldpool.orchestrator.base import ACTIVE, SWEEP_LEASE, OrchestratorBase

log = logging.getLogger("worldpool.orchestrator.core")


class Sweeper(OrchestratorBase):
    """Liveness and timeouts."""

    async def _sweep_loop(self) -> None:
        while not self._stopping:
            try:
                if await self.backend.acquire_lease(
                    SWEEP_LEASE, self.name, self.settings.offline_after_s * 2
                ):
                    await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(min(0.5, self.settings.heartbeat_s / 2))

    async def sweep_once(self) -> None:
        """Fail over silent workers' tasks and enforce timeouts."""
        now = await self.backend.now()
        workers = await self.backend.list_workers()
        dead = [
            w
            for w in workers
            if w.state.status is not WorkerStatus.OFFLINE
            and now - w.state.last_heartbeat > self.settings.offline_after_s
        ]
        for worker in dead:
            await self.fail_over(
                worker.id,
                f"worker {worker.id} missed {self.settings.offline_after_heartbeats} heartbeats",
            )
        await self._enforce_timeouts(now)

    async def fail_over(self, worker_id: str, reason: str) -> int:
        """Declare a worker dead and re-route everything it held. Returns tasks moved."""
        if await self.backend.mark_offline(worker_id):
            await self._emit_event(
                Event(kind=EventKind.WORKER_OFFLINE, worker_id=worker_id, message=reason)
            )
        await self.backend.reclaim(worker_id)
        moved = 0
        for record in await self.backend.list_active_tasks():
            if (
                record.worker_id == worker_id
                and record.status in ACTIVE
                and await self._lose_attempt(record, reason)
            ):
                moved += 1
        await self._notify()
        return moved

    async def _enforce_timeouts(self, now: float) -> None:
        """Only the tasks whose indexed deadline passed are read (``list_due_tasks``), not
        every unfinished record: the sweep costs the same with 20 or 20,000 tasks queued."""
        for record in await self.backend.list_due_tasks(now):
            spec = record.spec
            if record.status is TaskStatus.PENDING and spec.schedule_to_start_timeout_s:
                if now - record.submitted_at > spec.schedule_to_start_timeout_s:
                    await self._time_out(
                        record, "schedule-to-start", spec.schedule_to_start_timeout_s, final=True
                    )
            elif record.status in ACTIVE and record.attempts:
                attempt = record.attempts[-1]
                if (
                    spec.execution_timeout_s
                    and attempt.started_at
                    and now - attempt.started_at > spec.execution_timeout_s
                ):
                    await self._time_out(record, "execution", spec.execution_timeout_s)
                elif (
                    spec.heartbeat_timeout_s
                    and record.status is TaskStatus.RUNNING
                    and now - float(record.meta.get("last_progress_at") or now)
                    > spec.heartbeat_timeout_s
                ):
                    await self._time_out(record, "heartbeat", spec.heartbeat_timeout_s)

    async def _time_out(
        self, record: TaskRecord, limit: str, seconds: float, final: bool = False
    ) -> None:
        now = await self.backend.now()
        error = f"{limit} timeout of {seconds:g}s passed"
        if final:
            nxt = lifecycle.failed_attempt(record, error, now, retryable=False)
        else:
            nxt = lifecycle.failed_attempt(record, error, now, retryable=True, rng=self._rng)
        if await self._put_task(nxt, expect_version=record.version):
            if record.worker_id and record.status in ACTIVE:
                await self.backend.release(record.worker_id, record.id)
            await self._emit(
                EventKind.TASK_TIMED_OUT, nxt, worker_id=record.worker_id, message=error
            )
            if final:
                await self.backend.remove_pending(record.id)
            await self._after_transition(record, nxt, record.worker_id or "")
