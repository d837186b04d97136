"""What a simulation run measured, and its summary per policy.

Completion time is arrival to result (queue wait, network, transfers and run time
included); for a workflow it is the whole workflow (first arrival to last step). Queue
wait is ready to first dispatch. A task is *lost* if the run neither finished it nor
knows where it is (must be 0); *stuck* if it was still pending or running when the run
ended (reported with the router's reasons). *Unschedulable time* is task-seconds spent
pending while no online worker could ever take the task (as opposed to waiting for a
free slot).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass
class Counters:
    decisions: int = 0
    dispatches: int = 0
    retries: int = 0
    failovers: int = 0
    dead_lettered: int = 0
    sticky_hits: int = 0
    sticky_misses: int = 0
    cross_region_bytes: int = 0
    crashes: int = 0
    unschedulable_task_s: float = 0.0
    egress_cost_usd: float = 0.0
    carbon_kg: float = 0.0  # busy slots' share of their box's power x grid intensity
    gpu_busy_slot_s: float = 0.0  # slot-seconds held on GPU workers
    lost_reservations: int = 0  # decisions refused by a full worker (stale views)


@dataclass
class StuckTask:
    task: int
    source: str
    status: str
    reasons: list[str]
    suggestion: str | None


@dataclass
class ClassStats:
    count: int
    p50_s: float
    p95_s: float
    p99_s: float
    mean_queue_wait_s: float
    p95_queue_wait_s: float
    within_goal: float | None  # share of tasks within their latency goal, None = no goal


@dataclass
class RunResult:
    """One policy's run. ``completion`` holds per-class completion times for plots."""

    policy: str
    tasks: int
    succeeded: int
    counters: Counters
    classes: dict[str, ClassStats]
    total_cost_usd: float
    lost: int
    stuck: list[StuckTask]
    wall_s: float
    sim_s: float
    completion: dict[str, F64] = field(repr=False)
    region_names: list[str] = field(default_factory=list)
    region_load: F64 = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    sample_s: float = 900.0
    fleet_cost_usd: float = 0.0  # every worker for the whole run, busy or idle
    gpu_slot_s: float = 0.0  # GPU slots x the day: the denominator of GPU utilisation

    @property
    def idle_cost_usd(self) -> float:
        """What the fleet cost while its slots were idle (fleet minus busy compute)."""
        return max(0.0, self.fleet_cost_usd - (self.total_cost_usd - self.counters.egress_cost_usd))

    @property
    def gpu_utilisation(self) -> float:
        """Share of GPU slot time held by tasks (busy slot-s / slots x day)."""
        return self.counters.gpu_busy_slot_s / self.gpu_slot_s if self.gpu_slot_s > 0 else 0.0

    @property
    def tasks_per_wall_s(self) -> float:
        return self.tasks / self.wall_s if self.wall_s > 0 else float("inf")

    def overall_p95_s(self) -> float:
        parts = [v for v in self.completion.values() if len(v)]
        if not parts:
            return float("nan")
        return float(np.percentile(np.concatenate(parts), 95))

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "tasks": self.tasks,
            "succeeded": self.succeeded,
            "total_cost_usd": round(self.total_cost_usd, 4),
            "lost": self.lost,
            "stuck": [asdict(s) for s in self.stuck[:100]],
            "stuck_count": len(self.stuck),
            "counters": asdict(self.counters),
            "classes": {k: asdict(v) for k, v in self.classes.items()},
            "wall_s": round(self.wall_s, 3),
            "sim_s": self.sim_s,
            "tasks_per_wall_s": round(self.tasks_per_wall_s, 1),
            "region_names": self.region_names,
            "region_load_slots": self.region_load.round(2).tolist(),
            "sample_s": self.sample_s,
            "fleet_cost_usd": round(self.fleet_cost_usd, 4),
            "idle_cost_usd": round(self.idle_cost_usd, 4),
            "gpu_utilisation": round(self.gpu_utilisation, 4),
        }


def class_stats(completion: F64, waits: F64, goals: F64) -> ClassStats:
    """Percentiles of one class (NaN when it has no finished tasks)."""
    if len(completion) == 0:
        nan = float("nan")
        return ClassStats(0, nan, nan, nan, nan, nan, None)
    p50, p95, p99 = (float(x) for x in np.percentile(completion, [50, 95, 99]))
    has_goal = ~np.isnan(goals)
    within = float(np.mean(completion[has_goal] <= goals[has_goal])) if has_goal.any() else None
    return ClassStats(
        count=len(completion),
        p50_s=p50,
        p95_s=p95,
        p99_s=p99,
        mean_queue_wait_s=float(waits.mean()) if len(waits) else 0.0,
        p95_queue_wait_s=float(np.percentile(waits, 95)) if len(waits) else 0.0,
        within_goal=within,
    )
