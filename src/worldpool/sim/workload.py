"""Workloads: what arrives when, and how much work each task is.

A :class:`Workload` is columnar (numpy arrays, one row per task) so a million tasks cost
tens of MB, not the gigabytes a million pydantic objects would. Each row points at a
*template* (a validated :class:`~worldpool.models.TaskSpec` prototype); the engine makes
the task's real spec from it (``model_copy``) only when the task becomes ready.

Build one with :class:`WorkloadBuilder` (tests, traces) or a generator:
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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldpool import geo
from worldpool.errors import ConfigError
from worldpool.models import Requirements, StepSpec, TaskSpec, WorkflowSpec
from worldpool.sim.clock import DEFAULT_START_EPOCH
from worldpool.sim.pools import BIG_MODEL

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

DAY_S = 86_400.0
DEFAULT_STICKY_WAIT_S = 30.0
#: Median run time per handler (s) when a trace gives none.
HANDLER_WORK_S: dict[str, float] = {
    "plan": 8.0,
    "analyze": 12.0,
    "fix": 10.0,
    "review": 8.0,
    "llm": 6.0,
    "browser_check": 40.0,
    "browser": 40.0,
    "run_tests": 25.0,
    "shell": 5.0,
    "apply_patch": 2.0,
}


@dataclass
class Workload:
    """Tasks as columns. ``parents`` of task i: ``parent_idx[parent_ptr[i]:parent_ptr[i+1]]``."""

    templates: list[TaskSpec]
    class_names: list[str]
    users: list[str]
    arrival: F64
    template: I32
    cls: I32
    user: I32  # index into users, -1 = none
    work_s: F64
    goal_s: F64  # NaN = no goal
    rounds: I32  # user <-> worker round trips while it runs (interactive)
    out_bytes: I64  # size of the artifact the task hands to its children
    context_s: F64  # extra time when a sticky step misses its warm worker
    wf: I32  # workflow index, -1 = standalone
    sticky: I32  # task whose worker this one should stick to, -1 = none
    parent_ptr: I64
    parent_idx: I32
    step_names: list[str]
    workflow_ids: list[str]
    sources: list[str]  # "file:line" per task ("" for generated)

    def __len__(self) -> int:
        return len(self.arrival)

    @property
    def n_workflows(self) -> int:
        return len(self.workflow_ids)

    def children(self) -> tuple[I64, I32]:
        """CSR of the inverse of ``parents``: (child_ptr, child_idx)."""
        n = len(self)
        counts = np.diff(self.parent_ptr)
        owners = np.repeat(np.arange(n, dtype=np.int32), counts)
        order = np.argsort(self.parent_idx, kind="stable")
        child_idx = owners[order].astype(np.int32)
        per_parent = np.bincount(self.parent_idx, minlength=n)
        child_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_parent, out=child_ptr[1:])
        return child_ptr, child_idx


class WorkloadBuilder:
    """Collects tasks and workflows, then :meth:`build` makes the columns."""

    def __init__(self) -> None:
        self._templates: list[TaskSpec] = []
        self._template_ix: dict[int, int] = {}
        self._classes: dict[str, int] = {}
        self._users: dict[str, int] = {}
        self._rows: list[tuple[float, int, int, int, float, float, int, int, float, int, int]] = []
        self._parents: list[Sequence[int]] = []
        self._steps: list[str] = []
        self._workflows: list[str] = []
        self._sources: list[str] = []

    def __len__(self) -> int:
        return len(self._rows)

    def _intern(self, spec: TaskSpec) -> int:
        ix = self._template_ix.get(id(spec))
        if ix is None:
            ix = self._template_ix[id(spec)] = len(self._templates)
            self._templates.append(spec)
        return ix

    def add_task(
        self,
        spec: TaskSpec,
        at: float,
        work_s: float,
        *,
        cls: str = "task",
        goal_s: float | None = None,
        rounds: int = 0,
        out_bytes: int = 0,
        user: str | None = None,
        source: str = "",
        _wf: int = -1,
        _parents: Sequence[int] = (),
        _sticky: int = -1,
        _context_s: float = 0.0,
        _step: str = "",
    ) -> int:
        """Add one task arriving at ``at`` (sim seconds); returns its row."""
        if not (work_s >= 0 and at >= 0):
            raise ConfigError(f"task {spec.id}: at={at} and work_s={work_s} must be >= 0")
        code = user or spec.user_location
        if code is not None:
            geo.location_for(code)  # unknown places fail here, with a did-you-mean
        u = -1 if code is None else self._users.setdefault(code, len(self._users))
        c = self._classes.setdefault(cls, len(self._classes))
        self._rows.append(
            (
                at,
                self._intern(spec),
                c,
                u,
                work_s,
                np.nan if goal_s is None else goal_s,
                rounds,
                out_bytes,
                _context_s,
                _wf,
                _sticky,
            )
        )
        self._parents.append(_parents)
        self._steps.append(_step)
        self._sources.append(source)
        return len(self._rows) - 1

    def add_workflow(
        self,
        spec: WorkflowSpec,
        at: float,
        work_s: dict[str, float] | None = None,
        *,
        cls: str = "workflow",
        out_bytes: dict[str, int] | None = None,
        context_s: dict[str, float] | None = None,
        goal_s: float | None = None,
        source: str = "",
        templates: dict[str, TaskSpec] | None = None,
    ) -> list[int]:
        """Add a workflow's steps (in dependency order); returns their rows.

        ``templates`` lets generators share one prototype per step across workflows.
        """
        wf = len(self._workflows)
        self._workflows.append(spec.id)
        rows: dict[str, int] = {}
        for step in _topological(spec):
            parents = [rows[p] for p in step.after]
            sticky = rows[step.sticky_to] if step.sticky_to else -1
            proto = (templates or {}).get(step.name, step.task)
            rows[step.name] = self.add_task(
                proto,
                at,
                (work_s or {}).get(step.name, HANDLER_WORK_S.get(step.task.handler, 10.0)),
                cls=cls,
                goal_s=goal_s,
                out_bytes=(out_bytes or {}).get(step.name, 0),
                user=step.task.user_location or spec.user_location,
                source=source,
                _wf=wf,
                _parents=parents,
                _sticky=sticky,
                _context_s=(context_s or {}).get(step.name, 0.0),
                _step=step.name,
            )
        return list(rows.values())

    def build(self) -> Workload:
        cols = list(zip(*self._rows, strict=True)) if self._rows else [()] * 11
        ptr = np.zeros(len(self._parents) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in self._parents], out=ptr[1:])
        flat = [p for ps in self._parents for p in ps]
        return Workload(
            templates=self._templates,
            class_names=list(self._classes),
            users=list(self._users),
            arrival=np.array(cols[0], np.float64),
            template=np.array(cols[1], np.int32),
            cls=np.array(cols[2], np.int32),
            user=np.array(cols[3], np.int32),
            work_s=np.array(cols[4], np.float64),
            goal_s=np.array(cols[5], np.float64),
            rounds=np.array(cols[6], np.int32),
            out_bytes=np.array(cols[7], np.int64),
            context_s=np.array(cols[8], np.float64),
            wf=np.array(cols[9], np.int32),
            sticky=np.array(cols[10], np.int32),
            parent_ptr=ptr,
            parent_idx=np.array(flat, np.int32),
            step_names=self._steps,
            workflow_ids=self._workflows,
            sources=self._sources,
        )


def _topological(spec: WorkflowSpec) -> list[StepSpec]:
    by_name = {s.name: s for s in spec.steps}
    done: dict[str, StepSpec] = {}
    visiting: set[str] = set()

    def visit(step: StepSpec) -> None:
        if step.name in done:
            return
        if step.name in visiting:
            raise ConfigError(f"workflow {spec.id}: steps form a cycle through {step.name!r}")
        visiting.add(step.name)
        for dep in [*step.after, *([step.sticky_to] if step.sticky_to else [])]:
            if dep not in by_name:
                raise ConfigError(
                    f"workflow {spec.id}: step {step.name!r} depends on unknown step {dep!r}"
                )
            visit(by_name[dep])
        done[step.name] = step

    for s in spec.steps:
        visit(s)
    return list(done.values())


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
