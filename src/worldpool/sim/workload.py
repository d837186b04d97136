"""Workloads: what arrives when, and how much work each task is.

A :class:`~worldpool.sim.workload_table.Workload` is a table of tasks (numpy columns,
see :mod:`worldpool.sim.workload_table`; both it and its builder are importable from
here). Build one with :class:`WorkloadBuilder` (tests, traces) or this module's generator:
:func:`world_workload` mixes interactive LLM turns and browser sessions from users in 27
cities whose arrivals follow each city's working day, sandbox test runs, heavy batch
inference (follow-the-sun candidates) and the seed's multi-step workflow
(plan → localize → understand → fix (sticky to understand) → tests ‖ browser → review)
with artifact hand-offs between steps.

``work_s`` is the run time on a reference worker (A100 box, 50 tokens/s; any CPU worker);
faster hardware divides it (see engine). ``goal_s`` is an interactive latency goal on
completion time (arrival to result).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from worldpool import geo
from worldpool.errors import ConfigError
from worldpool.models import Requirements, StepSpec, TaskSpec, WorkflowSpec
from worldpool.sim.clock import DEFAULT_START_EPOCH
from worldpool.sim.pools import BIG_MODEL
from worldpool.sim.workload_table import (
    DAY_S,
    F64,
    HANDLER_WORK_S,
    Workload,
    WorkloadBuilder,
)

__all__ = [
    "DAY_S",
    "HANDLER_WORK_S",
    "Workload",
    "WorkloadBuilder",
    "seed_workflow",
    "world_workload",
]

# --------------------------------------------------------------------------- generators

#: City -> relative number of developers (users of interactive work).
DEFAULT_USERS: dict[str, float] = {
    "san-francisco": 8,
    "new-york": 7,
    "seattle": 3,
    "chicago": 3,
    "virginia": 2,
    "toronto": 2,
    "sao-paulo": 3,
    "mexico-city": 2,
    "london": 6,
    "paris": 4,
    "frankfurt": 4,
    "amsterdam": 2,
    "stockholm": 1,
    "madrid": 2,
    "warsaw": 2,
    "tokyo": 5,
    "seoul": 3,
    "beijing": 4,
    "shanghai": 3,
    "singapore": 2,
    "bangalore": 5,
    "mumbai": 3,
    "sydney": 2,
    "dubai": 1,
    "tel-aviv": 1,
    "johannesburg": 1,
    "lagos": 1,
}
#: Share of tasks per class (workflow = all steps of seed-shaped workflows).
DEFAULT_MIX: dict[str, float] = {
    "interactive_llm": 0.45,
    "interactive_browser": 0.12,
    "sandbox": 0.20,
    "batch_inference": 0.05,
    "workflow": 0.18,
}
_GPU = Requirements(gpu=True, model=BIG_MODEL)
PROTOTYPES: dict[str, TaskSpec] = {
    "interactive_llm": TaskSpec(
        id="proto-llm",
        handler="analyze",
        capabilities={"coding"},
        requirements=_GPU,
        interactive=True,
    ),
    "interactive_browser": TaskSpec(
        id="proto-browser",
        handler="browser_check",
        capabilities={"browser_operations"},
        interactive=True,
    ),
    "sandbox": TaskSpec(
        id="proto-sandbox", handler="run_tests", capabilities={"testing", "shell_operations"}
    ),
    "batch_inference": TaskSpec(
        id="proto-batch",
        handler="llm",
        capabilities={"research"},
        requirements=_GPU,
        heavy=True,
        priority=-10,
    ),
}
# class -> (median work_s, lognormal sigma, goal_s, user round trips)
CLASS_SHAPE: dict[str, tuple[float, float, float | None, int]] = {
    "interactive_llm": (6.0, 0.6, 20.0, 2),
    "interactive_browser": (40.0, 0.5, 120.0, 30),
    "sandbox": (25.0, 0.8, None, 0),
    "batch_inference": (900.0, 0.5, None, 0),
}
WORKFLOW_GOAL_S = 600.0


def seed_workflow(wf_id: str = "wf-proto", user: str | None = None) -> WorkflowSpec:
    """The seed's "fix the authentication bug" workflow (interactive agent steps)."""

    def t(handler: str, caps: set[str], *, gpu: bool = False) -> TaskSpec:
        return TaskSpec(
            id=f"{wf_id}-{handler}",
            handler=handler,
            capabilities=caps,
            requirements=_GPU if gpu else Requirements(),
            interactive=True,
        )

    return WorkflowSpec(
        id=wf_id,
        name="fix-auth-bug",
        user_location=user,
        steps=[
            StepSpec(name="plan", task=t("plan", {"planning"}, gpu=True)),
            StepSpec(
                name="localize",
                task=t("run_tests", {"file_operations", "shell_operations"}),
                after=["plan"],
            ),
            StepSpec(
                name="understand",
                task=t("analyze", {"coding", "debugging"}, gpu=True),
                after=["localize"],
            ),
            StepSpec(
                name="fix",
                task=t("fix", {"coding"}, gpu=True),
                after=["understand"],
                sticky_to="understand",
            ),
            StepSpec(
                name="verify_tests",
                task=t("run_tests", {"testing", "shell_operations"}),
                after=["fix"],
            ),
            StepSpec(
                name="verify_browser",
                task=t("browser_check", {"browser_operations"}),
                after=["fix"],
            ),
            StepSpec(
                name="review",
                task=t("review", {"reviewing"}, gpu=True),
                after=["verify_tests", "verify_browser"],
            ),
        ],
    )


WORKFLOW_WORK_S = {
    "plan": 8.0,
    "localize": 20.0,
    "understand": 12.0,
    "fix": 10.0,
    "verify_tests": 30.0,
    "verify_browser": 30.0,
    "review": 8.0,
}
WORKFLOW_OUT_BYTES = {
    "plan": 20_000,
    "localize": 50_000_000,
    "understand": 40_000,
    "fix": 10_000,
    "verify_tests": 200_000,
    "verify_browser": 2_000_000,
    "review": 0,
}
WORKFLOW_CONTEXT_S = {"fix": 20.0}  # re-reading the repo and re-prefilling the model


def _arrivals(
    rng: np.random.Generator, n: int, cities: list[str], p: F64, start_epoch: float, day_s: float
) -> tuple[F64, npt.NDArray[np.intp]]:
    """Arrival times (sim s) following each user's working day, and their city indices."""
    who = rng.choice(len(cities), size=n, p=p)
    grid = np.arange(0, 24, 0.25)
    intensity = 0.12 + np.exp(-(((grid - 14.0) / 3.5) ** 2))  # peak 14:00 local
    cdf = np.cumsum(intensity) / intensity.sum()
    local_h = grid[np.searchsorted(cdf, rng.random(n))] + rng.uniform(0, 0.25, n)
    offsets = np.array(
        [geo.utc_offset_hours(geo.location_for(c).timezone, start_epoch) for c in cities]
    )
    at = ((local_h - offsets[who]) * 3600.0) % DAY_S
    return at * (day_s / DAY_S), who


def world_workload(
    tasks: int = 1_000_000,
    seed: int = 0,
    *,
    mix: dict[str, float] | None = None,
    users: dict[str, float] | None = None,
    start_epoch: float = DEFAULT_START_EPOCH,
    day_s: float = DAY_S,
) -> Workload:
    """About ``tasks`` tasks over one simulated day (deterministic for ``seed``)."""
    mix = mix or DEFAULT_MIX
    unknown = set(mix) - {*CLASS_SHAPE, "workflow"}
    if unknown:
        raise ConfigError(
            f"unknown workload classes {sorted(unknown)}; "
            f"known: {sorted({*CLASS_SHAPE, 'workflow'})}"
        )
    users = users or DEFAULT_USERS
    cities = list(users)
    p = np.array([users[c] for c in cities], np.float64)
    p /= p.sum()
    rng = np.random.default_rng(seed)
    total = sum(mix.values())
    b = WorkloadBuilder()
    for cls, share in mix.items():
        n = round(tasks * share / total)
        if cls == "workflow":
            _add_workflows(b, rng, n // len(WORKFLOW_WORK_S), cities, p, start_epoch, day_s)
            continue
        median, sigma, goal, rounds = CLASS_SHAPE[cls]
        work = median * rng.lognormal(0.0, sigma, n)
        if PROTOTYPES[cls].interactive:
            at, who = _arrivals(rng, n, cities, p, start_epoch, day_s)
        else:  # pipelines submit around the clock
            at, who = rng.uniform(0, day_s, n), rng.choice(len(cities), size=n, p=p)
        proto = PROTOTYPES[cls]
        interactive = proto.interactive
        for i in range(n):
            b.add_task(
                proto,
                float(at[i]),
                float(work[i]),
                cls=cls,
                goal_s=goal,
                rounds=rounds,
                user=cities[int(who[i])] if interactive else None,
            )
    return b.build()


def _add_workflows(
    b: WorkloadBuilder,
    rng: np.random.Generator,
    n: int,
    cities: list[str],
    p: F64,
    start_epoch: float,
    day_s: float,
) -> None:
    proto = seed_workflow()
    templates = {s.name: s.task for s in proto.steps}
    at, who = _arrivals(rng, n, cities, p, start_epoch, day_s)
    scale = rng.lognormal(0.0, 0.4, n)
    for i in range(n):
        spec = proto.model_copy(update={"id": f"wf-{i:06d}", "user_location": cities[int(who[i])]})
        work = {k: v * float(scale[i]) for k, v in WORKFLOW_WORK_S.items()}
        b.add_workflow(
            spec,
            float(at[i]),
            work,
            out_bytes=WORKFLOW_OUT_BYTES,
            context_s=WORKFLOW_CONTEXT_S,
            goal_s=WORKFLOW_GOAL_S,
            templates=templates,
        )
