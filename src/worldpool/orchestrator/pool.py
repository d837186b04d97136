"""What this replica knows of the pool: :class:`PoolView`, the pool snapshot the router
decides against (kept honest locally between re-reads), the sticky placements it made,
and the routing context of a task."""

from __future__ import annotations

import time

from worldpool import geo
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.models import TaskRecord, TaskSpec, TaskStatus, Worker, WorkerStatus
from worldpool.orchestrator.trust import ReportGate
from worldpool.routing import PoolSnapshot, RoutingContext

# The snapshot is kept current locally (slots taken on dispatch, given back on results)
# and re-read from the backend at most this often, or at once after a failed reservation.
POOL_REFRESH_S = 0.25


class PoolView:
    """The pool snapshot and the affinity table; the only writer of both."""

    def __init__(
        self, backend: Backend, settings: Settings, gate: ReportGate | None = None
    ) -> None:
        self._backend = backend
        self._gate = gate
        self._settings = settings
        self.snapshot = PoolSnapshot()
        self._read_at = 0.0  # monotonic time of the last refresh (0: refresh now)
        self._affinity: dict[str, str] = {}  # affinity key -> worker that ran it last

    @property
    def stale(self) -> bool:
        """Whether the snapshot is due for a re-read (or was found wrong)."""
        return time.monotonic() - self._read_at > POOL_REFRESH_S

    def mark_stale(self) -> None:
        """The snapshot was wrong about a worker: re-read it before the next decision."""
        self._read_at = 0.0

    async def refresh(self) -> None:
        self._read_at = time.monotonic()
        workers = await self._backend.list_workers()
        seen = set()
        for worker in workers:
            if self._gate is not None and not await self._gate.admit(worker):
                continue  # a wrong credential: never routed to
            seen.add(worker.id)
            self.snapshot.upsert(worker)
        for worker in list(self.snapshot.workers):
            if worker.id not in seen:
                self.snapshot.remove(worker.id)

    def worker(self, worker_id: str) -> Worker:
        return self.snapshot.workers[self.snapshot.row_of(worker_id)]

    def adjust_running(self, worker_id: str, delta: int) -> None:
        """Keep the snapshot's slot count honest between refreshes."""
        if worker_id not in self.snapshot:
            return
        worker = self.worker(worker_id)
        worker.state.running = max(0, worker.state.running + delta)
        self.snapshot.update_state(worker.state)

    def free_slots(self) -> int:
        return sum(
            max(0, w.profile.max_concurrency - w.state.running)
            for w in self.snapshot.workers
            if w.state.status is WorkerStatus.ONLINE
        )

    def remember_affinity(self, key: str, worker_id: str) -> None:
        """``worker_id`` ran a task with affinity ``key``: its context is warm there."""
        self._affinity[key] = worker_id

    async def context(self, record: TaskRecord, now: float) -> RoutingContext:
        """What the router needs to know of ``record`` besides the pool."""
        spec = record.spec
        avoid: frozenset[str] = frozenset()
        if spec.retry.prefer_different_worker:
            avoid = frozenset(a.worker_id for a in record.attempts if a.status is TaskStatus.FAILED)
        return RoutingContext(
            task=spec,
            now=now,
            user_location=geo.try_location(spec.user_location) if spec.user_location else None,
            affinity_worker=await self._affinity_worker(spec),
            waited_s=max(0.0, now - record.submitted_at),
            avoid_workers=avoid,
            heartbeat_timeout_s=self._settings.offline_after_s,
        )

    async def _affinity_worker(self, spec: TaskSpec) -> str | None:
        if spec.affinity is None:
            return None
        key = spec.affinity.key
        if key in self._affinity:
            return self._affinity[key]
        wf_id, _, step = key.rpartition(":")
        if wf_id and step:  # workflow sticky key "{workflow}:{step}" -> who ran that step
            other = await self._backend.get_task(f"{wf_id}.{step}")
            if other is not None and other.status is TaskStatus.SUCCEEDED:
                return other.attempts[-1].worker_id if other.attempts else None
        return None
