"""How long one attempt takes on a worker, and when workers fail: the simulator's model.

Time of one attempt on worker ``w`` (all from :mod:`worldpool.geo` and the profile):

    dispatch  = latency_to_orchestrator_ms(w) / 2
    transfer  = per input from another region: RTT + bytes / (125 MB/s * min(1, 30 ms / RTT))
    run       = work_s / speed(w)   (speed = served tokens/s / 50 for LLM handlers, else 1)
                x batching slowdown x noise   (both 1 unless configured: worldpool.sim.truth)
    context   = context_s if a sticky step missed its warm worker
    user      = rounds * RTT(user, w)              (interactive round trips)
    result    = latency_to_orchestrator_ms(w) / 2

Cross-region input bytes also cost egress (:data:`EGRESS_USD_PER_GB`). Workers crash at
``crash_per_worker_day`` and are repaired after an exponential ``repair_s``; whole
regions go dark (``outages``): :func:`schedule_failures` puts those events on the queue.
:class:`SimConfig` holds the run's settings, these rates included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from worldpool import geo
from worldpool.config import DEFAULT_HEARTBEAT_S, DEFAULT_OFFLINE_AFTER_HEARTBEATS
from worldpool.models import Location, WorkerProfile
from worldpool.sim.clock import DEFAULT_START_EPOCH, Ev, EventQueue
from worldpool.sim.truth import Truth
from worldpool.sim.workload_table import Workload

LLM_HANDLERS = frozenset({"plan", "analyze", "fix", "review", "llm"})
REFERENCE_TOKENS_S = 50.0
SAME_REGION_BPS = 1.25e9
CROSS_REGION_BPS = 1.25e8
EGRESS_USD_PER_GB = 0.02


@dataclass
class SimConfig:
    """One run's settings: its seed, clock and horizon, and its failure model."""

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
    # The honest simulator (worldpool.sim.truth, worldpool.sim.views); all off by default.
    batching: float = 0.0  # LLM slowdown per extra request in flight (0.04: 78 % at 8)
    noise: float = 0.0  # sigma of lognormal gaps between advertised and true speed/RTT
    time_of_day: bool = False  # charge the grid model's time-of-day price factor
    stale_s: float = 0.0  # decisions on views refreshed every stale_s (0: live)
    deciders: int = 1  # orchestrators deciding at once, each on its own view


@dataclass(slots=True)
class Attempt:
    """One attempt's duration and what it moved across regions."""

    duration_s: float
    cross_region_bytes: list[int]  # per input fetched from another region, in input order
    sticky_hit: bool | None  # None: the task is not sticky


class AttemptTimer:
    """Durations of attempts of ``workload`` tasks on ``profiles`` (rows of the pool)."""

    def __init__(
        self, workload: Workload, profiles: list[WorkerProfile], truth: Truth | None = None
    ) -> None:
        self.wl = workload
        self.profiles = profiles
        self.truth = truth or Truth(profiles, start_epoch=0.0, seed=0)
        self.speed_llm = np.array([llm_speed(p) for p in profiles])
        self.user_locs: list[Location] = [geo.location_for(u) for u in workload.users]

    def attempt(
        self, i: int, row: int, worker_of: np.ndarray, owner: int | None, in_flight: int = 1
    ) -> Attempt:
        """Task ``i`` on ``row``; ``worker_of`` gives the row each parent ran on and
        ``owner`` the row holding the task's sticky context (if any); ``in_flight`` the
        requests on the box with this one (the batching curve)."""
        wl, prof, truth = self.wl, self.profiles[row], self.truth
        far = float(truth.distance[row])
        half = prof.latency_to_orchestrator_ms / 2000.0 * far
        proto = wl.templates[wl.template[i]]
        speed = 1.0
        run = float(wl.work_s[i]) * truth.jitter()
        if proto.handler in LLM_HANDLERS:  # the box's model speed: measured, and off
            speed = float(self.speed_llm[row]) * float(truth.speed[row])
            run *= truth.slowdown(in_flight)
        dur = 2 * half + run / speed
        here = prof.location
        crossed = []
        for p in wl.parent_idx[wl.parent_ptr[i] : wl.parent_ptr[i + 1]].tolist():
            src = self.profiles[worker_of[p]].location
            if src.region != here.region:
                nbytes = int(wl.out_bytes[p])
                rtt = geo.rtt_ms(src, here) * far
                dur += rtt / 1000 + nbytes / (CROSS_REGION_BPS * min(1.0, 30.0 / rtt))
                crossed.append(nbytes)
            else:
                dur += int(wl.out_bytes[p]) / SAME_REGION_BPS
        hit = None
        if int(wl.sticky[i]) >= 0:
            hit = owner == row
            if not hit:
                dur += float(wl.context_s[i])
        u = int(wl.user[i])
        if u >= 0 and wl.rounds[i] > 0:
            dur += int(wl.rounds[i]) * geo.rtt_ms(self.user_locs[u], here) * far / 1000
        return Attempt(dur, crossed, hit)


def schedule_failures(
    cfg: SimConfig, rng: np.random.Generator, profiles: list[WorkerProfile], q: EventQueue
) -> None:
    """Push every crash and recovery of the run (random crashes, then region outages)."""
    nw = len(profiles)
    if cfg.crash_per_worker_day > 0:
        expected = cfg.crash_per_worker_day * nw * cfg.horizon_s / 86_400.0
        count = int(rng.poisson(expected))
        times = np.sort(rng.uniform(0, cfg.horizon_s, count))
        rows = rng.integers(0, nw, count)
        for t, r in zip(times.tolist(), rows.tolist(), strict=True):
            q.push(t, Ev.CRASH, r)
            repair = float(rng.exponential(cfg.repair_s))
            q.push(t + max(repair, cfg.detect_s + 1.0), Ev.RECOVER, r)
    for region, at, length in cfg.outages:
        hit = [r for r, p in enumerate(profiles) if geo.region_matches(p.location, region)]
        for r in hit:
            q.push(at, Ev.CRASH, r)
            q.push(at + max(length, cfg.detect_s + 1.0), Ev.RECOVER, r)


def llm_speed(p: WorkerProfile) -> float:
    """Speed of the worker's first (main) served model relative to the reference box."""
    models = p.hardware.models
    if not models or models[0].tokens_per_s <= 0:
        return 1.0
    return models[0].tokens_per_s / REFERENCE_TOKENS_S
