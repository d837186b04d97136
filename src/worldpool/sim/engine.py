"""The discrete-event simulation: a workload meets a pool through a placement policy.

Each ready task is placed by the policy (the real Router, or a baseline that uses the
router's filters); the chosen worker's slot count is patched into the same
:class:`~worldpool.routing.PoolSnapshot` the router reads, exactly as heartbeats and
reservations patch it in production. A task that cannot be placed waits in a queue per
task template and is retried only when a worker that could ever run it frees a slot or
comes back; a task held for its soft-affinity worker is retried when that worker frees a
slot or its wait budget ends.

Time of one attempt on worker ``w`` (all from :mod:`worldpool.geo` and the profile):

    dispatch  = latency_to_orchestrator_ms(w) / 2
    transfer  = per input from another region: RTT + bytes / (125 MB/s * min(1, 30 ms / RTT))
    run       = work_s / speed(w)   (speed = served tokens/s / 50 for LLM handlers, else 1)
    context   = context_s if a sticky step missed its warm worker
    user      = rounds * RTT(user, w)              (interactive round trips)
    result    = latency_to_orchestrator_ms(w) / 2

Failures: each attempt fails with ``fail_p`` (retried with the task's RetryPolicy backoff,
preferring another worker); workers crash at ``crash_per_worker_day`` and are repaired
after an exponential ``repair_s``; whole regions go dark (``outages``). A crash is noticed
after ``detect_s`` (3 missed heartbeats) and the worker's tasks fail over. Cost is the
slot's share of the worker's price for the time it was held, plus egress for
cross-region bytes.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from worldpool import geo
from worldpool.config import DEFAULT_HEARTBEAT_S, DEFAULT_OFFLINE_AFTER_HEARTBEATS
from worldpool.models import (
    Affinity,
    AffinityMode,
    ArtifactRef,
    Location,
    TaskSpec,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
)
from worldpool.routing import PoolSnapshot, RoutingContext
from worldpool.sim.clock import DEFAULT_START_EPOCH, Ev, EventQueue, VirtualClock
from worldpool.sim.metrics import Counters, RunResult, StuckTask, class_stats
from worldpool.sim.policies import Placer
from worldpool.sim.pools import ORCHESTRATOR_REGION
from worldpool.sim.workload import Workload
from worldpool.unchecked import construct

LLM_HANDLERS = frozenset({"plan", "analyze", "fix", "review", "llm"})
REFERENCE_TOKENS_S = 50.0
SAME_REGION_BPS = 1.25e9
CROSS_REGION_BPS = 1.25e8
EGRESS_USD_PER_GB = 0.02
STATIC_FILTERS = ("capabilities", "hardware", "region")
_STATE_FIELDS = frozenset(WorkerState.model_fields)
_AFFINITY_FIELDS = frozenset(Affinity.model_fields)
_ARTIFACT_FIELDS = frozenset(ArtifactRef.model_fields)
NEW, PENDING, RUNNING, DONE, DEAD = 0, 1, 2, 3, 4
STATUS_NAMES = {NEW: "waiting for parents", PENDING: "pending", RUNNING: "running"}


@dataclass
class SimConfig:
    seed: int = 0
    start_epoch: float = DEFAULT_START_EPOCH
    horizon_s: float = 86_400.0  # crashes and load samples are generated up to here
    until_s: float | None = None  # stop processing events here (default: horizon + 1 day)
    fail_p: float = 0.0
    crash_per_worker_day: float = 0.0
    repair_s: float = 600.0
    detect_s: float = DEFAULT_HEARTBEAT_S * DEFAULT_OFFLINE_AFTER_HEARTBEATS
    outages: list[tuple[str, float, float]] = field(default_factory=list)  # region, at, for
    sample_s: float = 900.0


@dataclass
class _Group:
    """Pending tasks of one template, and their unschedulable task-seconds."""

    eligible: np.ndarray
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
        self.speed_llm = np.array([_llm_speed(p) for p in self.profiles])
        self.orch = geo.location_for(ORCHESTRATOR_REGION)
        self.user_locs: list[Location] = [geo.location_for(u) for u in workload.users]
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
        self._schedule_failures()
        t = 0.0
        while t < self.cfg.horizon_s:
            self.q.push(t, Ev.SAMPLE)
            t += self.cfg.sample_s
        roots = np.flatnonzero(self.parents_left == 0)
        roots = roots[np.argsort(self.wl.arrival[roots], kind="stable")]
        arrivals = self.wl.arrival[roots]
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
                self._ready(int(roots[k]))
                k += 1
            else:
                self._handle(*self.q.pop())
        return self._result(time.perf_counter() - started)

    def _handle(self, at: float, kind: Ev, a: int, b: int) -> None:
        if kind is Ev.FINISH:
            self._finish(a, b)
        elif kind in (Ev.RETRY, Ev.WAKE):
            if self.attempt[a] == b and self.status[a] == PENDING and not self.queued[a]:
                self._drop_waiter(a)
                self._try_place(a)
        elif kind is Ev.CRASH:
            self._crash(a)
        elif kind is Ev.DETECT:
            self._detect(a)
        elif kind is Ev.RECOVER:
            self._recover(a)
        elif kind is Ev.SAMPLE:
            self.loads.append(
                np.bincount(self.region_of, weights=self.running, minlength=len(self.pool.regions))
            )

    # ------------------------------------------------------------------ placing

    def _ready(self, i: int) -> None:
        now = self.clock.now
        self.status[i] = PENDING
        self.ready_t[i] = now
        w = int(self.wl.wf[i])
        if w >= 0:
            self.wf_start[w] = min(self.wf_start[w], float(self.wl.arrival[i]))
        self._try_place(i)

    def _spec(self, i: int) -> tuple[TaskSpec, int | None]:
        wl = self.wl
        proto = wl.templates[wl.template[i]]
        update: dict[str, object] = {}
        u = int(wl.user[i])
        if u >= 0 and proto.user_location != wl.users[u]:
            update["user_location"] = wl.users[u]
        owner: int | None = None
        s = int(wl.sticky[i])
        if s >= 0:
            key = f"{wl.workflow_ids[wl.wf[i]]}:{wl.step_names[s]}"
            update["affinity"] = construct(
                Affinity,
                _AFFINITY_FIELDS,
                {"key": key, "mode": AffinityMode.SOFT, "wait_s": 30.0},
            )
            owner = int(self.worker[s])
        elif proto.affinity is not None:
            owner = self.key_owner.get(proto.affinity.key)
        p0, p1 = wl.parent_ptr[i], wl.parent_ptr[i + 1]
        if p1 > p0:
            update["inputs"] = {
                f"in{p}": construct(
                    ArtifactRef,
                    _ARTIFACT_FIELDS,
                    {
                        "digest": f"sha256:{p:064x}",
                        "name": f"out-{p}",
                        "size": int(wl.out_bytes[p]),
                        "media_type": "application/octet-stream",
                        "producer": self.ids[self.worker[p]],
                    },
                )
                for p in wl.parent_idx[p0:p1].tolist()
            }
        return (proto.model_copy(update=update) if update else proto), owner

    def _try_place(self, i: int) -> bool:
        spec, owner = self._spec(i)
        now = self.clock.now
        u = int(self.wl.user[i])
        ctx = RoutingContext(
            task=spec,
            now=self.clock.epoch(),
            user_location=self.user_locs[u] if u >= 0 else None,
            orchestrator_location=self.orch,
            affinity_worker=self.ids[owner] if owner is not None and owner >= 0 else None,
            waited_s=now - float(self.ready_t[i]),
            avoid_workers=self.avoid.get(i, frozenset()),
            heartbeat_timeout_s=math.inf,  # liveness is modelled by crash/detect events
        )
        self.c.decisions += 1
        placement = self.placer.place(ctx, self.pool)
        if placement.row is not None:
            self._dispatch(i, placement.row, owner)
            return True
        self.last_why[i] = (placement.reasons, placement.suggestion)
        if placement.waiting_for_affinity and owner is not None:
            self.affinity_waiters.setdefault(owner, {})[i] = None
            wait_s = spec.affinity.wait_s if spec.affinity else 0.0
            self.q.push(float(self.ready_t[i]) + wait_s, Ev.WAKE, i, int(self.attempt[i]))
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
            g = self.groups[template] = _Group(mask, last_t=self.clock.now)
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
        for g in list(self.groups.values()):
            if not g.queue or not g.eligible[row]:
                continue
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

    # ------------------------------------------------------------------ running

    def _dispatch(self, i: int, row: int, owner: int | None) -> None:
        now, wl, prof = self.clock.now, self.wl, self.profiles[row]
        self.c.dispatches += 1
        self.status[i] = RUNNING
        self.attempt[i] += 1
        self.worker[i] = row
        self.dispatch_t[i] = now
        self.dispatch_inc[i] = self.incarnation[row]
        if math.isnan(self.first_dispatch[i]):
            self.first_dispatch[i] = now
        self.on_worker[row][i] = None
        self.running[row] += 1
        self._push_state(row)
        self.placer.placed(row, now)

        half = prof.latency_to_orchestrator_ms / 2000.0
        proto = wl.templates[wl.template[i]]
        speed = float(self.speed_llm[row]) if proto.handler in LLM_HANDLERS else 1.0
        dur = 2 * half + float(wl.work_s[i]) / speed
        here = prof.location
        for p in wl.parent_idx[wl.parent_ptr[i] : wl.parent_ptr[i + 1]].tolist():
            src = self.profiles[self.worker[p]].location
            if src.region != here.region:
                nbytes = int(wl.out_bytes[p])
                rtt = geo.rtt_ms(src, here)
                dur += rtt / 1000 + nbytes / (CROSS_REGION_BPS * min(1.0, 30.0 / rtt))
                self.c.cross_region_bytes += nbytes
                self.c.egress_cost_usd += nbytes / 1e9 * EGRESS_USD_PER_GB
                self.cost[i] += nbytes / 1e9 * EGRESS_USD_PER_GB
            else:
                dur += int(wl.out_bytes[p]) / SAME_REGION_BPS
        s = int(wl.sticky[i])
        if s >= 0:
            if owner == row:
                self.c.sticky_hits += 1
            else:
                self.c.sticky_misses += 1
                dur += float(wl.context_s[i])
        u = int(wl.user[i])
        if u >= 0 and wl.rounds[i] > 0:
            dur += int(wl.rounds[i]) * geo.rtt_ms(self.user_locs[u], here) / 1000
        if not self.alive[row]:
            return  # sent to a dead worker that nobody noticed yet: DETECT fails it over
        if self.cfg.fail_p > 0 and self.rng.random() < self.cfg.fail_p:
            dur *= float(self.rng.uniform(0.1, 1.0))
            self.q.push(now + dur, Ev.FINISH, i, -int(self.attempt[i]))
        else:
            self.q.push(now + dur, Ev.FINISH, i, int(self.attempt[i]))

    def _push_state(self, row: int) -> None:
        status = WorkerStatus.ONLINE if self.known_online[row] else WorkerStatus.OFFLINE
        values = {
            "worker_id": self.ids[row],
            "status": status,
            "running": int(self.running[row]),
            "last_heartbeat": self.clock.epoch(),
            "latency_ms": None,
            "cached": [],
            "sticky_keys": [],
        }
        self.pool.update_state(construct(WorkerState, _STATE_FIELDS, values))

    def _free(self, i: int) -> int:
        row = int(self.worker[i])
        self.on_worker[row].pop(i, None)
        self.running[row] -= 1
        prof = self.profiles[row]
        held = self.clock.now - float(self.dispatch_t[i])
        self.cost[i] += prof.cost_per_hour / prof.max_concurrency * held / 3600.0
        self._push_state(row)
        return row

    def _finish(self, i: int, signed_attempt: int) -> None:
        attempt = abs(signed_attempt)
        row = int(self.worker[i])
        if (
            self.status[i] != RUNNING
            or self.attempt[i] != attempt
            or self.dispatch_inc[i] != self.incarnation[row]
            or not self.alive[row]
        ):
            return  # stale: the worker died, the task failed over
        self._free(i)
        if signed_attempt < 0:
            self._failed_attempt(i, row)
        else:
            self._succeeded(i)
        self._released(row)

    def _succeeded(self, i: int) -> None:
        now, wl = self.clock.now, self.wl
        self.status[i] = DONE
        self.end_t[i] = now
        proto = wl.templates[wl.template[i]]
        if proto.affinity is not None:
            self.key_owner[proto.affinity.key] = int(self.worker[i])
        w = int(wl.wf[i])
        if w >= 0:
            self.wf_left[w] -= 1
            if self.wf_left[w] == 0:
                self.wf_end[w] = now
        for ch in self.child_idx[self.child_ptr[i] : self.child_ptr[i + 1]].tolist():
            self.parents_left[ch] -= 1
            if self.parents_left[ch] == 0:
                self._ready(ch)

    def _failed_attempt(self, i: int, row: int) -> None:
        retry = self.wl.templates[self.wl.template[i]].retry
        if self.tries[i] >= retry.max_retries:
            self.status[i] = DEAD
            self.end_t[i] = self.clock.now
            self.c.dead_lettered += 1
            return
        self.tries[i] += 1
        self.c.retries += 1
        delay = min(
            retry.backoff_max_s,
            retry.backoff_initial_s * retry.backoff_multiplier ** (self.tries[i] - 1),
        )
        if retry.jitter:
            delay *= float(self.rng.uniform(0.5, 1.0))
        if retry.prefer_different_worker:
            self.avoid[i] = self.avoid.get(i, frozenset()) | {self.ids[row]}
        self.status[i] = PENDING
        self.q.push(self.clock.now + delay, Ev.RETRY, i, int(self.attempt[i]))

    # ------------------------------------------------------------------ failures

    def _schedule_failures(self) -> None:
        cfg, nw = self.cfg, len(self.ids)
        if cfg.crash_per_worker_day > 0:
            expected = cfg.crash_per_worker_day * nw * cfg.horizon_s / 86_400.0
            count = int(self.rng.poisson(expected))
            times = np.sort(self.rng.uniform(0, cfg.horizon_s, count))
            rows = self.rng.integers(0, nw, count)
            for t, r in zip(times.tolist(), rows.tolist(), strict=True):
                self.q.push(t, Ev.CRASH, r)
                repair = float(self.rng.exponential(cfg.repair_s))
                self.q.push(t + max(repair, cfg.detect_s + 1.0), Ev.RECOVER, r)
        for region, at, length in cfg.outages:
            hit = [r for r, p in enumerate(self.profiles) if geo.region_matches(p.location, region)]
            for r in hit:
                self.q.push(at, Ev.CRASH, r)
                self.q.push(at + max(length, cfg.detect_s + 1.0), Ev.RECOVER, r)

    def _crash(self, row: int) -> None:
        self.down[row] += 1
        if not self.alive[row]:
            return
        self.c.crashes += 1
        self.alive[row] = False
        self.incarnation[row] += 1
        self.q.push(self.clock.now + self.cfg.detect_s, Ev.DETECT, row, int(self.incarnation[row]))

    def _detect(self, row: int) -> None:
        if self.alive[row] or not self.known_online[row]:
            return
        self.known_online[row] = False
        self._reschedulable()
        for i in list(self.on_worker[row]):
            self._free(i)
            self.c.failovers += 1
            self.avoid[i] = self.avoid.get(i, frozenset()) | {self.ids[row]}
            self.status[i] = PENDING
            self._try_place(i)
        self._push_state(row)

    def _recover(self, row: int) -> None:
        self.down[row] -= 1
        if self.alive[row] or self.down[row] > 0:
            return
        if self.known_online[row]:  # repaired before anyone noticed: detect now
            self._detect(row)
        self.alive[row] = True
        self.known_online[row] = True
        self._push_state(row)
        self._reschedulable()
        self._released(row)

    def _reschedulable(self) -> None:
        for g in self.groups.values():
            g.settle(self.clock.now, self.c)
            g.unschedulable = not bool((g.eligible & self.known_online).any())

    # ------------------------------------------------------------------ results

    def _result(self, wall_s: float) -> RunResult:
        wl, now = self.wl, self.clock.now
        for g in self.groups.values():
            g.settle(now, self.c)
        done = self.status == DONE
        completion: dict[str, np.ndarray] = {}
        classes = {}
        waits_all = self.first_dispatch - self.ready_t
        for c, name in enumerate(wl.class_names):
            in_cls = wl.cls == c
            standalone = in_cls & (wl.wf < 0) & done
            comp = self.end_t[standalone] - wl.arrival[standalone]
            goals = wl.goal_s[standalone]
            wfs = np.unique(wl.wf[in_cls & (wl.wf >= 0)])
            if len(wfs):
                ok = wfs[~np.isnan(self.wf_end[wfs])]
                comp = np.concatenate([comp, self.wf_end[ok] - self.wf_start[ok]])
                goals = np.concatenate([goals, _wf_goals(wl, ok)])
            waits = waits_all[in_cls & ~np.isnan(waits_all)]
            completion[name] = comp
            classes[name] = class_stats(comp, waits, goals)
        stuck = []
        for i in np.flatnonzero((self.status != DONE) & (self.status != DEAD)).tolist():
            reasons, suggestion = self.last_why.get(i, ((), None))
            stuck.append(
                StuckTask(
                    i,
                    wl.sources[i],
                    STATUS_NAMES.get(int(self.status[i]), "?"),
                    list(reasons),
                    suggestion,
                )
            )
        accounted = int(done.sum()) + int((self.status == DEAD).sum()) + len(stuck)
        loads = np.array(self.loads) if self.loads else np.zeros((0, len(self.pool.regions)))
        return RunResult(
            policy=self.placer.name,
            tasks=len(wl),
            succeeded=int(done.sum()),
            counters=self.c,
            classes=classes,
            total_cost_usd=float(self.cost.sum()),
            lost=len(wl) - accounted,
            stuck=stuck,
            wall_s=wall_s,
            sim_s=now,
            completion=completion,
            region_names=list(self.pool.regions),
            region_load=loads,
            sample_s=self.cfg.sample_s,
        )


def _wf_goals(wl: Workload, wfs: np.ndarray) -> np.ndarray:
    """Each workflow's goal: that of its first step."""
    first = np.full(wl.n_workflows, -1, np.int64)
    rows = np.flatnonzero(wl.wf >= 0)
    first[wl.wf[rows[::-1]]] = rows[::-1]
    out: np.ndarray = wl.goal_s[first[wfs]]
    return out


def _llm_speed(p: WorkerProfile) -> float:
    """Speed of the worker's first (main) served model relative to the reference box."""
    models = p.hardware.models
    if not models or models[0].tokens_per_s <= 0:
        return 1.0
    return models[0].tokens_per_s / REFERENCE_TOKENS_S
