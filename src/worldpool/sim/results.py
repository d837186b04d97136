"""A run's task states, and the :class:`~worldpool.sim.metrics.RunResult` read off it.

The engine keeps each task's state as an int8 code (:data:`NEW` … :data:`DEAD`);
:func:`collect` turns the final columns into per-class completion statistics, the stuck
tasks with the router's last reasons, and the lost-task check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from worldpool.sim.metrics import RunResult, StuckTask, class_stats
from worldpool.sim.workload_table import Workload

if TYPE_CHECKING:
    from worldpool.sim.engine import Simulation

NEW, PENDING, RUNNING, DONE, DEAD = 0, 1, 2, 3, 4
STATUS_NAMES = {NEW: "waiting for parents", PENDING: "pending", RUNNING: "running"}


def collect(sim: Simulation, wall_s: float) -> RunResult:
    """The measurements of a finished run (its pending groups already settled)."""
    wl, now = sim.wl, sim.clock.now
    done = sim.status == DONE
    completion: dict[str, np.ndarray] = {}
    classes = {}
    waits_all = sim.first_dispatch - sim.ready_t
    for c, name in enumerate(wl.class_names):
        in_cls = wl.cls == c
        standalone = in_cls & (wl.wf < 0) & done
        comp = sim.end_t[standalone] - wl.arrival[standalone]
        goals = wl.goal_s[standalone]
        wfs = np.unique(wl.wf[in_cls & (wl.wf >= 0)])
        if len(wfs):
            ok = wfs[~np.isnan(sim.wf_end[wfs])]
            comp = np.concatenate([comp, sim.wf_end[ok] - sim.wf_start[ok]])
            goals = np.concatenate([goals, _wf_goals(wl, ok)])
        waits = waits_all[in_cls & ~np.isnan(waits_all)]
        completion[name] = comp
        classes[name] = class_stats(comp, waits, goals)
    stuck = []
    for i in np.flatnonzero((sim.status != DONE) & (sim.status != DEAD)).tolist():
        reasons, suggestion = sim.last_why.get(i, ((), None))
        stuck.append(
            StuckTask(
                i,
                wl.sources[i],
                STATUS_NAMES.get(int(sim.status[i]), "?"),
                list(reasons),
                suggestion,
            )
        )
    accounted = int(done.sum()) + int((sim.status == DEAD).sum()) + len(stuck)
    loads = np.array(sim.loads) if sim.loads else np.zeros((0, len(sim.pool.regions)))
    return RunResult(
        policy=sim.placer.name,
        tasks=len(wl),
        succeeded=int(done.sum()),
        counters=sim.c,
        classes=classes,
        total_cost_usd=float(sim.cost.sum()),
        lost=len(wl) - accounted,
        stuck=stuck,
        wall_s=wall_s,
        sim_s=now,
        completion=completion,
        region_names=list(sim.pool.regions),
        region_load=loads,
        sample_s=sim.cfg.sample_s,
        fleet_cost_usd=sim.truth.fleet_cost(sim.pool.cost_per_hour, max(sim.cfg.horizon_s, now)),
        gpu_slot_s=float(sim.slots[sim.truth.gpu].sum()) * sim.cfg.horizon_s,
    )


def _wf_goals(wl: Workload, wfs: np.ndarray) -> np.ndarray:
    """Each workflow's goal: that of its first step."""
    first = np.full(wl.n_workflows, -1, np.int64)
    rows = np.flatnonzero(wl.wf >= 0)
    first[wl.wf[rows[::-1]]] = rows[::-1]
    out: np.ndarray = wl.goal_s[first[wfs]]
    return out
