"""What this replica knows of the pool: :class:`PoolView`, the pool snapshot the router
decides against, the sticky placements it made, and the routing context of a task.

The snapshot follows the pool by its changes (:meth:`Backend.pool_changes`): it is read
whole once, at start, and after that each refresh reads only the workers that registered,
went offline or changed status or routing state, and the heartbeats since the last
refresh. Slots are kept honest locally (taken on dispatch, given back on results); a
worker the snapshot was wrong about (a lost reservation) is re-read alone, and so, once a
second, are the workers it believes full (another replica may have freed their slots).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import numpy as np

from worldpool import geo
from worldpool.backends.base import Backend, PoolCursor
from worldpool.config import Settings
from worldpool.models import TaskRecord, TaskSpec, TaskStatus, Worker, WorkerStatus
from worldpool.orchestrator.trust import ReportGate
from worldpool.routing import PoolSnapshot, RoutingContext
from worldpool.routing.pool import STATUS_CODES, STATUS_ONLINE

# The snapshot is refreshed (by its changes) at most this often, or at once after a
# failed reservation.
POOL_REFRESH_S = 0.25
# Workers the snapshot believes full are re-read this often, at most this many at a time.
RECHECK_FULL_S = 1.0
RECHECK_FULL_MAX = 256
_OFFLINE = STATUS_CODES[WorkerStatus.OFFLINE]


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
        self._cursor: PoolCursor | None = None  # None: read the whole pool next
        self._recheck: set[str] = set()  # workers to re-read alone at the next refresh
        self._full_checked_at = 0.0
        self._stuck: set[str] = set()  # workers whose heartbeat says they cannot consume
        self._affinity: dict[str, str] = {}  # affinity key -> worker that ran it last
        # Free slots of online workers, as of snapshot version ``_free_at``: kept by
        # adjust_running (O(1)), counted over the pool again after any other change.
        self._free = 0
        self._free_at = -1
        self._refreshing = asyncio.Lock()
        self._loaded = False  # a first read of the whole pool has completed

    @property
    def loading(self) -> bool:
        """Whether the first read of the whole pool is under way (seconds at 10,000
        workers): a client's submit queues its task then, for ``serve`` to send."""
        return not self._loaded and self._refreshing.locked()

    @property
    def stale(self) -> bool:
        """Whether the snapshot is due for a refresh (or was found wrong)."""
        return time.monotonic() - self._read_at > POOL_REFRESH_S

    def mark_stale(self, worker_id: str | None = None) -> None:
        """The snapshot was wrong about ``worker_id``: re-read it before the next decision
        (None: re-read the whole pool)."""
        if worker_id is None:
            self._cursor = None
        else:
            self._recheck.add(worker_id)
        self._read_at = 0.0

    async def refresh(self) -> None:
        """Read the pool's changes since the last refresh. Concurrent callers (a burst of
        submits) share one read: those that waited find the snapshot fresh."""
        if self._refreshing.locked():
            async with self._refreshing:
                if not self.stale:
                    return
        async with self._refreshing:
            await self._refresh()
            self._loaded = True

    async def _refresh(self) -> None:
        self._read_at = time.monotonic()
        changes = await self._backend.pool_changes(self._cursor)
        self._cursor = changes.cursor
        snapshot = self.snapshot
        if changes.full:
            seen = set()
            for worker in changes.workers:
                if not await self._admitted(worker):
                    continue  # a wrong credential: never routed to
                seen.add(worker.id)
                snapshot.upsert(worker)
            for worker in list(snapshot.workers):
                if worker.id not in seen:
                    snapshot.remove(worker.id)
            self._recheck.clear()
            self._stuck = {w.id for w in changes.workers if not w.state.consuming}
            return
        for worker in changes.workers:
            self._recheck.discard(worker.id)
            if await self._admitted(worker):
                self._upsert(worker)
            elif worker.id in snapshot:
                snapshot.remove(worker.id)
        for worker_id in changes.gone:
            if worker_id in snapshot:
                snapshot.remove(worker_id)
        snapshot.touch(changes.heartbeats)
        recheck = self._recheck | self._full_workers()
        self._recheck = set()
        if recheck:
            ids = sorted(recheck)
            for worker_id, fresh in zip(ids, await self._backend.get_workers(ids), strict=True):
                if fresh is not None and await self._admitted(fresh):
                    self._upsert(fresh)
                elif worker_id in snapshot:
                    snapshot.remove(worker_id)

    async def _admitted(self, worker: Worker) -> bool:
        """Whether the worker proved its credential (always, without a deployment secret)."""
        return self._gate is None or await self._gate.admit(worker)

    def _upsert(self, worker: Worker) -> None:
        self.snapshot.upsert(worker)
        if worker.state.consuming:
            self._stuck.discard(worker.id)
        else:
            self._stuck.add(worker.id)

    def _full_workers(self) -> set[str]:
        """Online workers the snapshot believes full, once every RECHECK_FULL_S."""
        now = time.monotonic()
        if now - self._full_checked_at < RECHECK_FULL_S or not len(self.snapshot):
            return set()
        self._full_checked_at = now
        snap = self.snapshot
        rows = np.flatnonzero((snap.status == STATUS_ONLINE) & (snap.free_slots <= 0))
        return {snap.ids[int(row)] for row in rows[:RECHECK_FULL_MAX]}

    def silent(self, now: float, after_s: float, grace_from: float | None) -> list[str]:
        """Workers not offline whose last heartbeat this snapshot saw is older than
        ``after_s`` (counted from ``grace_from`` at the earliest), or that report they
        cannot read new work: the ones the sweep re-reads to check."""
        snap = self.snapshot
        if not len(snap):
            return []
        heard = np.maximum(snap.last_heartbeat, grace_from or 0.0)
        rows = np.flatnonzero((snap.status != _OFFLINE) & ((now - heard) > after_s))
        found = {snap.ids[int(row)] for row in rows}
        for worker_id in self._stuck:
            if (
                worker_id in snap
                and self.worker(worker_id).state.status is not WorkerStatus.OFFLINE
            ):
                found.add(worker_id)
        return sorted(found)

    def worker(self, worker_id: str) -> Worker:
        return self.snapshot.workers[self.snapshot.row_of(worker_id)]

    def adjust_running(self, worker_id: str, delta: int) -> None:
        """Keep the snapshot's slot count honest between refreshes."""
        snap = self.snapshot
        if worker_id not in snap:
            return
        row = snap.row_of(worker_id)
        worker = snap.workers[row]
        counted = self._free_at == snap.version
        before = self._online_free(row)
        worker.state.running = max(0, worker.state.running + delta)
        snap.update_state(worker.state)
        if counted:  # the row's share changed, nothing else did
            self._free += self._online_free(snap.row_of(worker_id)) - before
            self._free_at = snap.version

    def _online_free(self, row: int) -> int:
        snap = self.snapshot
        return int(snap.free_slots[row]) if snap.status[row] == STATUS_ONLINE else 0

    def free_slots(self) -> int:
        """Free slots of the online workers: a count over the pool only after the
        snapshot changed otherwise than by :meth:`adjust_running` (a refresh)."""
        snap = self.snapshot
        if self._free_at != snap.version:
            free = snap.free_slots[snap.status == STATUS_ONLINE] if len(snap) else []
            self._free, self._free_at = int(np.sum(free)), snap.version
        return self._free

    def free_slots_for(self, handlers: Iterable[str]) -> int:
        """Free slots of the online workers offering any of ``handlers`` (a lookup in the
        snapshot's handler index and a sum over those rows)."""
        snap = self.snapshot
        found = [snap.handlers.rows_with(h) for h in handlers] if len(snap) else []
        if not found:
            return 0
        rows = np.unique(np.concatenate(found)) if len(found) > 1 else found[0]
        online = snap.status[rows] == STATUS_ONLINE
        return int(np.sum(snap.free_slots[rows][online]))

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
