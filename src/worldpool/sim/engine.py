"""The discrete-event simulation: a workload meets a pool through a placement policy.

Each ready task is placed by the policy (the real Router, or a baseline that uses the
router's filters); the chosen worker's slot count is patched into the same
:class:`~worldpool.routing.PoolSnapshot` the router reads, exactly as heartbeats and
reservations patch it in production. A task that cannot be placed waits in a queue per
task template and is retried only when a worker that could ever run it frees a slot or
comes back (queues served as production serves pending tasks: by priority, then age); a task held for its soft-affinity worker is retried when that worker frees a
slot or its wait budget ends.

How long an attempt takes, and when workers crash, is modelled in
:mod:`worldpool.sim.timing` (with the run's :class:`SimConfig`). A placed attempt runs,
ends, frees its slot and is paid for in :mod:`worldpool.sim.attempts` (each fails with
``fail_p``, retried with the task's RetryPolicy backoff, preferring another worker); a
crash is noticed after ``detect_s`` (3 missed heartbeats) and the worker's tasks fail
over (:mod:`worldpool.sim.failover`). :mod:`worldpool.sim.results` reads the result off
the run.

What really happens may differ from what the router believes (batching slowdown, noise,
time-of-day prices: :mod:`worldpool.sim.truth`), and decisions may be made on stale
views by several deciders (:mod:`worldpool.sim.views`); all of it is off by default.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from worldpool import geo
from worldpool.models import (
    TaskSpec,
    Worker,
    WorkerProfile,
    WorkerState,
)
from worldpool.routing import PoolSnapshot, RoutingContext
from worldpool.sim import attempts, failover
from worldpool.sim.clock import Ev, EventQueue, VirtualClock
from worldpool.sim.metrics import Counters, RunResult
from worldpool.sim.policies import Placer
from worldpool.sim.pools import ORCHESTRATOR_REGION
from worldpool.sim.results import PENDING, collect
from worldpool.sim.timing import AttemptTimer, SimConfig, schedule_failures
from worldpool.sim.truth import Truth
from worldpool.sim.views import Views
from worldpool.sim.workload_table import Workload

__all__ = ["SimConfig", "Simulation"]

STATIC_FILTERS = ("capabilities", "hardware", "region")
_NO_WORKERS: frozenset[str] = frozenset()


@dataclass
class _Group:
    """Pending tasks of one template, and their unschedulable task-seconds."""

    eligible: np.ndarray
    priority: int = 0  # the template's task priority (higher is served first)
    queue: deque[int] = field(default_factory=deque)
    unschedulable: bool = False
    last_t: float = 0.0

    def settle(self, now: float, c: Counters) -> None:
        if self.unschedulable:
            c.unschedulable_task_s += (now - self.last_t) * len(self.queue)
        self.last_t = now


class Simulation:
    """One run of ``workload`` on ``profiles`` under ``placer``."""

    def __init__(
        self,
        profiles: list[WorkerProfile],
        workload: Workload,
        placer: Placer,
        config: SimConfig | None = None,
    ) -> None:
        self.cfg = config or SimConfig()
        self.wl, self.placer = workload, placer
        self.clock = VirtualClock(self.cfg.start_epoch)
        self.q = EventQueue()
        self.rng = np.random.default_rng(self.cfg.seed)
        self.c = Counters()
        self.pool = PoolSnapshot(
            Worker(profile=p, state=WorkerState(worker_id=p.id)) for p in profiles
        )
        self.pool.refresh()
        self.profiles = [w.profile for w in self.pool.workers]
        self.ids = list(self.pool.ids)
        nw, n = len(self.ids), len(workload)
        self.running = np.zeros(nw, np.int64)
        self.alive = np.ones(nw, np.bool_)
        self.known_online = np.ones(nw, np.bool_)
        self.incarnation = np.zeros(nw, np.int64)
        self.on_worker: list[dict[int, None]] = [{} for _ in range(nw)]
        self.region_of = self.pool.region_index
        cfg = self.cfg
        self.truth = Truth(
            self.profiles,
            start_epoch=cfg.start_epoch,
            seed=cfg.seed,
            noise=cfg.noise,
            batching=cfg.batching,
            time_of_day=cfg.time_of_day,
        )
        self.timer = AttemptTimer(workload, self.profiles, self.truth)
        self.views = (
            Views(self.profiles, cfg.deciders, cfg.stale_s)
            if cfg.deciders > 1 or cfg.stale_s > 0
            else None
        )
        self.slots = self.pool.max_concurrency.copy()
        self.active = 0  # tasks ready, pending or running (SYNC stops when none are left)
        self.arrivals_left = 0
        self.orch = geo.location_for(ORCHESTRATOR_REGION)
        self.status = np.zeros(n, np.int8)
        self.queued = np.zeros(n, np.bool_)
        self.down = np.zeros(nw, np.int32)
        self.attempt = np.zeros(n, np.int32)
        self.tries = np.zeros(n, np.int32)
        self.worker = np.full(n, -1, np.int32)
        self.ready_t = np.full(n, np.nan)
        self.first_dispatch = np.full(n, np.nan)
        self.dispatch_t = np.zeros(n)
        self.dispatch_inc = np.zeros(n, np.int64)
        self.end_t = np.full(n, np.nan)
        self.cost = np.zeros(n)
        self.parents_left = np.diff(workload.parent_ptr).astype(np.int32)
        self.child_ptr, self.child_idx = workload.children()
        self.wf_left = np.bincount(workload.wf[workload.wf >= 0], minlength=workload.n_workflows)
        self.wf_end = np.full(workload.n_workflows, np.nan)
        self.wf_start = np.full(workload.n_workflows, np.inf)
        self.avoid: dict[int, frozenset[str]] = {}
        self.key_owner: dict[str, int] = {}
        self.groups: dict[int, _Group] = {}
        self.affinity_waiters: dict[int, dict[int, None]] = {}
        self.last_why: dict[int, tuple[tuple[str, ...], str | None]] = {}
        self.loads: list[np.ndarray] = []
        self.region_slots = np.bincount(
            self.region_of, weights=self.pool.max_concurrency, minlength=len(self.pool.regions)
        )

    # ------------------------------------------------------------------ run

    def run(self) -> RunResult:
        started = time.perf_counter()
        schedule_failures(self.cfg, self.rng, self.profiles, self.q)
        t = 0.0
        while t < self.cfg.horizon_s:
            self.q.push(t, Ev.SAMPLE)
            t += self.cfg.sample_s
        order = np.flatnonzero(self.parents_left == 0)
        order = order[np.argsort(self.wl.arrival[order], kind="stable")]
        # Python lists: the loop below reads one item per event (no numpy scalars).
        roots: list[int] = order.tolist()
        arrivals: list[float] = self.wl.arrival[order].tolist()
        self.arrivals_left = len(roots)
        if self.views is not None:
            self.q.push(0.0, Ev.SYNC)
        until = self.cfg.until_s if self.cfg.until_s is not None else self.cfg.horizon_s + 86_400.0
        k = 0
        while True:
            t_arr = arrivals[k] if k < len(roots) else math.inf
            t_ev = self.q.peek_time()
            t = min(t_arr, t_ev)
            if t == math.inf or t > until:
                break
            self.clock.advance(float(t))
            if t_arr <= t_ev:
                self.arrivals_left -= 1
                self._ready(roots[k])
                k += 1
            else:
                self._handle(*self.q.pop())
        for g in self.groups.values():
            g.settle(self.clock.now, self.c)
        return collect(self, time.perf_counter() - started)

    def _handle(self, at: float, kind: Ev, a: int, b: int) -> None:
        if kind is Ev.FINISH:
            attempts.finish(self, a, b)
        elif kind in (Ev.RETRY, Ev.WAKE):
            if self.attempt[a] == b and self.status[a] == PENDING and not self.queued[a]:
                self._drop_waiter(a)
                self._try_place(a)
        elif kind is Ev.CRASH:
            failover.crash(self, a)
        elif kind is Ev.DETECT:
            failover.detect(self, a)
        elif kind is Ev.RECOVER:
            failover.recover(self, a)
        elif kind is Ev.SYNC:
            self._sync()
        elif kind is Ev.SAMPLE:
            self.loads.append(
                np.bincount(self.region_of, weights=self.running, minlength=len(self.pool.regions))
            )

    # ------------------------------------------------------------------ placing

    def _sync(self) -> None:
        """Every view refreshes from what workers report; retry where slots appeared."""
        assert self.views is not None
        before = self.views.views[0].free_slots.copy()
        self.views.sync(self.running, self.known_online)
        if any(g.queue for g in self.groups.values()):
            for row in np.flatnonzero(self.views.views[0].free_slots > before).tolist():
                self._released(row)
        if self.active > 0 or self.arrivals_left > 0:
            self.q.push(self.clock.now + max(self.views.stale_s, 1e-3), Ev.SYNC)

    def _ready(self, i: int) -> None:
        now = self.clock.now
        self.active += 1
        self.status[i] = PENDING
        self.ready_t[i] = now
        w = int(self.wl.wf[i])
        if w >= 0:
            self.wf_start[w] = min(self.wf_start[w], float(self.wl.arrival[i]))
        self._try_place(i)

    def _spec(self, i: int) -> tuple[TaskSpec, int | None]:
        """Task ``i``'s spec and the row holding its affinity key (None: unknown)."""
        wl = self.wl
        spec = wl.ready_spec(i, self.ids, self.worker)
        s = int(wl.sticky[i])
        if s >= 0:
            return spec, int(self.worker[s])
        affinity = wl.templates[wl.template[i]].affinity
        return spec, (self.key_owner.get(affinity.key) if affinity is not None else None)

    def _try_place(self, i: int) -> bool:
        spec, owner = self._spec(i)
        now = self.clock.now
        u = int(self.wl.user[i])
        ctx = RoutingContext(
            task=spec,
            now=self.clock.epoch(),
            user_location=self.timer.user_locs[u] if u >= 0 else None,
            orchestrator_location=self.orch,
            affinity_worker=self.ids[owner] if owner is not None and owner >= 0 else None,
            waited_s=now - float(self.ready_t[i]),
            avoid_workers=self.avoid.get(i, _NO_WORKERS),
            heartbeat_timeout_s=math.inf,  # liveness is modelled by crash/detect events
        )
        self.c.decisions += 1
        view = self.pool if self.views is None else self.views.for_task(i)
        placement = self.placer.place(ctx, view)
        while self.views is not None and placement.row is not None:
            row = placement.row
            if self.running[row] < self.slots[row]:
                self.views.reserve(view, row)
                break
            # The backend refuses a reservation on a full worker (atomic, as production):
            # the decider re-reads that worker and routes again.
            self.c.lost_reservations += 1
            self.views.correct(view, row, int(self.running[row]), bool(self.known_online[row]))
            self.c.decisions += 1
            placement = self.placer.place(ctx, view)
        if placement.row is not None:
            attempts.dispatch(self, i, placement.row, owner)
            return True
        self.last_why[i] = (placement.reasons, placement.suggestion)
        if placement.waiting_for_affinity and owner is not None:
            self.affinity_waiters.setdefault(owner, {})[i] = None
            wait_s = spec.affinity.wait_s if spec.affinity else 0.0
            wake_at = float(self.ready_t[i]) + wait_s
            if wake_at > now:  # a hard-sticky wait has no budget: the owner's release wakes it
                self.q.push(wake_at, Ev.WAKE, i, int(self.attempt[i]))
        else:
            g = self._group(int(self.wl.template[i]), ctx)
            g.settle(now, self.c)
            g.queue.append(i)
            self.queued[i] = True
        return False

    def _group(self, template: int, ctx: RoutingContext) -> _Group:
        g = self.groups.get(template)
        if g is None:
            mask = np.ones(len(self.ids), np.bool_)
            for p in self.placer.router.run_filters(ctx, self.pool):
                if p.hooks.name in STATIC_FILTERS:
                    mask &= p.mask
            g = self.groups[template] = _Group(
                mask, priority=ctx.task.priority, last_t=self.clock.now
            )
            g.unschedulable = not bool((mask & self.known_online).any())
        return g

    def _drop_waiter(self, i: int) -> None:
        for waiters in self.affinity_waiters.values():
            waiters.pop(i, None)

    def _released(self, row: int) -> None:
        """A slot freed on ``row`` (or it came back): retry tasks that could use it."""
        for i in list(self.affinity_waiters.pop(row, {})):
            if self.status[i] == PENDING:
                self._try_place(i)
        # As production serves pending tasks: by priority, then age (oldest first).
        ready = [g for g in self.groups.values() if g.queue and g.eligible[row]]
        if len(ready) > 1:
            ready.sort(key=lambda g: (-g.priority, float(self.ready_t[g.queue[0]])))
        for g in ready:
            g.settle(self.clock.now, self.c)
            while g.queue:
                i = g.queue.popleft()
                self.queued[i] = False
                if not self._try_place(i):
                    # _try_place queued it again at the back; restore FIFO order
                    if self.queued[i] and g.queue and g.queue[-1] == i:
                        g.queue.pop()
                        g.queue.appendleft(i)
                    break
