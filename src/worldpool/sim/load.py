"""Load levels: a day's workload sized to offer a target share of the pool's GPU time.

The interactive classes (LLM turns, browser sessions, sandbox runs, workflows) keep the
mix of :data:`~worldpool.sim.workload.DEFAULT_MIX` at ``interactive_tasks`` a day; heavy
batch inference, the class that fills GPUs, makes up the rest of the target. The
*offered* GPU load is the work of the big-model tasks at one-request speed over the
pool's big-model slot time, each slot weighted by its box's speed:

    offered = (interactive GPU work + batch jobs x E[batch work]) / sum(slots x speed) / day

``E[work]`` of a lognormal class is ``median x exp(sigma^2 / 2)``. What the run then
measures (busy GPU slot-time over GPU slot-time, :attr:`RunResult.gpu_utilisation`) is
higher when boxes batch (each request runs slower) and differs by policy; the reports
show both.
"""

from __future__ import annotations

import math

from worldpool.models import WorkerProfile
from worldpool.sim.pools import BIG_MODEL
from worldpool.sim.timing import REFERENCE_TOKENS_S
from worldpool.sim.workload import (
    CLASS_SHAPE,
    DAY_S,
    DEFAULT_MIX,
    WORKFLOW_WORK_S,
    Workload,
    world_workload,
)

GPU_WORKFLOW_STEPS = ("plan", "understand", "fix", "review")
WORKFLOW_SCALE_SIGMA = 0.4


def _mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2)


def gpu_capacity_s(profiles: list[WorkerProfile], day_s: float = DAY_S) -> float:
    """Reference-speed GPU seconds the pool's big-model slots can do in a day."""
    total = 0.0
    for p in profiles:
        for m in p.hardware.models:
            if m.name == BIG_MODEL and m.tokens_per_s > 0:
                total += p.max_concurrency * m.tokens_per_s / REFERENCE_TOKENS_S
                break
    return total * day_s


def interactive_counts(tasks: int) -> dict[str, int]:
    """The non-batch classes of the default mix, ``tasks`` in all."""
    shares = {k: v for k, v in DEFAULT_MIX.items() if k != "batch_inference"}
    total = sum(shares.values())
    return {k: round(tasks * v / total) for k, v in shares.items()}


def interactive_gpu_s(counts: dict[str, int]) -> float:
    """Reference-speed GPU seconds of the interactive classes' big-model work."""
    llm = counts.get("interactive_llm", 0) * _mean(*CLASS_SHAPE["interactive_llm"][:2])
    per_wf = sum(WORKFLOW_WORK_S[s] for s in GPU_WORKFLOW_STEPS)
    workflows = counts.get("workflow", 0) // len(WORKFLOW_WORK_S)
    return llm + workflows * _mean(per_wf, WORKFLOW_SCALE_SIGMA)


def batch_jobs_for(profiles: list[WorkerProfile], target: float, interactive_tasks: int) -> int:
    """Batch jobs a day that bring the offered GPU load to ``target`` (0..1)."""
    capacity = gpu_capacity_s(profiles)
    rest = target * capacity - interactive_gpu_s(interactive_counts(interactive_tasks))
    median, sigma = CLASS_SHAPE["batch_inference"][:2]
    return max(0, round(rest / _mean(median, sigma)))


def offered_load(profiles: list[WorkerProfile], counts: dict[str, int]) -> float:
    median, sigma = CLASS_SHAPE["batch_inference"][:2]
    work = interactive_gpu_s(counts) + counts.get("batch_inference", 0) * _mean(median, sigma)
    return work / gpu_capacity_s(profiles)


def load_workload(
    profiles: list[WorkerProfile], target: float, interactive_tasks: int, seed: int = 0
) -> tuple[Workload, dict[str, int]]:
    """A day offering ``target`` of the GPU time: the workload and its class counts."""
    counts = interactive_counts(interactive_tasks)
    counts["batch_inference"] = batch_jobs_for(profiles, target, interactive_tasks)
    mix = {k: float(v) for k, v in counts.items() if v > 0}
    return world_workload(sum(counts.values()), seed=seed, mix=mix), counts
