"""Stale snapshots and several orchestrators deciding at once.

In production each orchestrator routes on its own :class:`~worldpool.routing.PoolSnapshot`,
refreshed from heartbeats, and patches only its *own* reservations into it. With
``deciders`` = K and ``stale_s`` = S the simulator does the same: K views of the pool,
task ``i`` decided by view ``i % K``; a view sees its own dispatches at once and everyone
else's only at the next refresh, every S seconds (what workers report: running and
who is online). As in production the slot reservation is atomic at the backend: a
decision for a worker that is in truth full is refused (a *lost reservation*, counted),
the decider re-reads that one worker and routes again, so herding costs re-decisions,
not double-booked slots. With K = 1 and S = 0 there are no views (the router reads the
simulator's own pool, patched at once).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from worldpool.models import Worker, WorkerProfile, WorkerState, WorkerStatus
from worldpool.routing import PoolSnapshot
from worldpool.routing.pool import STATUS_CODES

I64 = npt.NDArray[np.int64]
_ONLINE = STATUS_CODES[WorkerStatus.ONLINE]
_OFFLINE = STATUS_CODES[WorkerStatus.OFFLINE]


def _snapshot(profiles: list[WorkerProfile]) -> PoolSnapshot:
    snap = PoolSnapshot(Worker(profile=p, state=WorkerState(worker_id=p.id)) for p in profiles)
    snap.refresh()
    return snap


class Views:
    """K stale views of the pool, one per decider."""

    def __init__(self, profiles: list[WorkerProfile], deciders: int, stale_s: float) -> None:
        if deciders < 1:
            raise ValueError(f"deciders is {deciders}: it must be at least 1")
        self.stale_s = stale_s
        self.views = [_snapshot(profiles) for _ in range(deciders)]
        self.slots = self.views[0].max_concurrency.copy()

    def for_task(self, i: int) -> PoolSnapshot:
        return self.views[i % len(self.views)]

    def reserve(self, view: PoolSnapshot, row: int) -> None:
        """The deciding view patches its own reservation at once (as production does)."""
        _set(view, np.array([row]), view.running[row : row + 1] + 1, None, self.slots)

    def correct(self, view: PoolSnapshot, row: int, running: int, online: bool) -> None:
        """After a lost reservation the decider re-reads that worker alone."""
        _set(view, np.array([row]), np.array([running]), np.array([online]), self.slots)

    def sync(self, reported: I64, online: npt.NDArray[np.bool_]) -> None:
        """Every view refreshes from what workers report."""
        rows = np.arange(len(reported))
        for view in self.views:
            _set(view, rows, reported, online, self.slots)


def _set(
    view: PoolSnapshot,
    rows: npt.NDArray[np.intp] | npt.NDArray[np.int64],
    running: I64,
    online: npt.NDArray[np.bool_] | None,
    slots: I64,
) -> None:
    view.running[rows] = running
    view.free_slots[rows] = np.maximum(0, slots[rows] - running)
    view.idle_share[rows] = np.maximum(0.0, 1.0 - running / slots[rows])
    if online is not None:
        view.status[rows] = np.where(online, _ONLINE, _OFFLINE)
    view.version += 1
