"""The sweep (one replica at a time, under a lease): marks silent workers offline,
re-routes their tasks, enforces schedule-to-start, execution and heartbeat timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from worldpool import lifecycle
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.epoch import EpochWatch
from worldpool.models import AttemptOutcome, Event, EventKind, TaskRecord, TaskStatus, Worker
from worldpool.orchestrator.liveness import Liveness
from worldpool.orchestrator.pending import PendingQueue
from worldpool.orchestrator.pool import PoolView
from worldpool.orchestrator.signals import Changes
from worldpool.orchestrator.transitions import ACTIVE, Transitions

log = logging.getLogger("worldpool.orchestrator.core")

SWEEP_LEASE = "sweep"


class Sweeper:
    """Liveness and timeouts."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        name: str,
        pending: PendingQueue,
        changes: Changes,
        transitions: Transitions,
        rng: random.Random,
        pool: PoolView | None = None,
    ) -> None:
        self._backend = backend
        self._pool = pool  # follows heartbeats: the sweep reads only workers it names
        self._settings = settings
        self._name = name
        self._pending = pending
        self._changes = changes
        self._transitions = transitions
        self._rng = rng
        self.liveness = Liveness(settings.heartbeat_s, settings.offline_after_heartbeats)
        self.epoch = EpochWatch(backend, f"orchestrator {name}")
        """Whether the backend lost its state under this replica (``epoch.lost``)."""

    async def run(self, stopping: Callable[[], bool]) -> None:
        """The sweep loop (a pass while this replica holds the lease) until ``stopping()``."""
        liveness = self.liveness
        while not stopping():
            try:
                # Every replica keeps its contact record (not only the lease holder), so a
                # replica taking the lease over after an outage knows to give grace.
                liveness.contact(await self._backend.now())
                await self.epoch.check()  # a Redis that came back empty is said loudly
                if await self._backend.acquire_lease(
                    SWEEP_LEASE, self._name, self._settings.offline_after_s * 2
                ):
                    await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                liveness.lost_contact()
                log.exception("sweep failed; retrying")
            await asyncio.sleep(min(0.5, self._settings.heartbeat_s / 2))

    async def release_lease(self) -> None:
        """Let another replica sweep at once (at stop; best effort)."""
        with contextlib.suppress(Exception):
            await self._backend.release_lease(SWEEP_LEASE, self._name)

    async def sweep_once(self) -> None:
        """Fail over silent workers' tasks and enforce timeouts."""
        now = await self._backend.now()  # before the read: a slow read adds no silence
        workers = await self._maybe_silent(now)
        for worker, reason in self.liveness.silent(workers, now):
            await self.fail_over(worker.id, reason)
        await self._enforce_timeouts(now)

    async def _maybe_silent(self, now: float) -> list[Worker]:
        """Fresh copies of the workers that may be silent: those the pool view (which
        follows heartbeats) says are, re-read to check; without a view, every worker."""
        pool = self._pool
        if pool is None:
            return await self._backend.list_workers()
        if pool.stale:
            await pool.refresh()
        live = self.liveness
        ids = pool.silent(now, live.offline_after_s, live.grace_from)
        if not ids:
            return []
        return [w for w in await self._backend.get_workers(ids) if w is not None]

    async def fail_over(self, worker_id: str, reason: str) -> int:
        """Declare a worker dead and re-route everything it held. Returns tasks moved."""
        if await self._backend.mark_offline(worker_id):
            await self._transitions.emit_event(
                Event(kind=EventKind.WORKER_OFFLINE, worker_id=worker_id, message=reason)
            )
        await self._backend.reclaim(worker_id)
        moved = 0
        for record in await self._backend.list_active_tasks():
            if (
                record.worker_id == worker_id
                and record.status in ACTIVE
                and await self._transitions.lose_attempt(record, reason)
            ):
                moved += 1
        self._changes.notify()
        return moved

    async def _enforce_timeouts(self, now: float) -> None:
        """Only the tasks whose indexed deadline passed are read (``list_due_tasks``), not
        every unfinished record: the sweep costs the same with 20 or 20,000 tasks queued."""
        time_out = self._time_out
        for record in await self._backend.list_due_tasks(now):
            spec = record.spec
            if record.status is TaskStatus.PENDING and spec.schedule_to_start_timeout_s:
                if now - record.submitted_at > spec.schedule_to_start_timeout_s:
                    await time_out(
                        record, "schedule-to-start", spec.schedule_to_start_timeout_s, final=True
                    )
            elif record.status in ACTIVE and record.attempts:
                attempt = record.attempts[-1]
                if (
                    spec.execution_timeout_s
                    and attempt.started_at
                    and now - attempt.started_at > spec.execution_timeout_s
                ):
                    await time_out(record, "execution", spec.execution_timeout_s, final=False)
                elif (
                    spec.heartbeat_timeout_s
                    and record.status is TaskStatus.RUNNING
                    and now - (record.last_progress_at or now) > spec.heartbeat_timeout_s
                ):
                    await time_out(record, "heartbeat", spec.heartbeat_timeout_s, final=False)

    async def _time_out(self, record: TaskRecord, limit: str, seconds: float, final: bool) -> None:
        """End the current attempt (or, ``final``, the task) for a timeout that passed."""
        now = await self._backend.now()
        error = f"{limit} timeout of {seconds:g}s passed"
        nxt = lifecycle.failed_attempt(
            record,
            error,
            now,
            outcome=AttemptOutcome.TIMED_OUT,
            retryable=not final,
            rng=self._rng,
        )
        if await self._transitions.put(nxt, expect_version=record.version):
            if record.worker_id and record.status in ACTIVE:
                await self._backend.release(record.worker_id, record.id)
            await self._transitions.emit(
                EventKind.TASK_TIMED_OUT, nxt, worker_id=record.worker_id, message=error
            )
            if final:
                await self._pending.remove(record.id)
            await self._transitions.after(record, nxt, record.worker_id or "")
