"""A workload as a table: numpy columns, one row per task, and the builder that fills it.

A :class:`Workload` is columnar so a million tasks cost tens of MB, not the gigabytes a
million pydantic objects would. Each row points at a *template* (a validated
:class:`~worldpool.models.TaskSpec` prototype); the engine makes the task's real spec
from it (``model_copy``) only when the task becomes ready. :class:`WorkloadBuilder`
collects tasks and workflows (tests, traces, the generators of
:mod:`worldpool.sim.workload`) and builds the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from worldpool import geo
from worldpool.errors import ConfigError
from worldpool.models import Affinity, AffinityMode, ArtifactRef, StepSpec, TaskSpec, WorkflowSpec
from worldpool.unchecked import construct

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

_AFFINITY_FIELDS = frozenset(Affinity.model_fields)
_ARTIFACT_FIELDS = frozenset(ArtifactRef.model_fields)
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

    def ready_spec(self, i: int, ids: Sequence[str], worker_of: npt.NDArray[Any]) -> TaskSpec:
        """Task ``i``'s real spec from its template, once its parents ran (``worker_of``
        gives each task's row, ``ids`` each row's worker id): its user, its sticky
        affinity, and its parents' outputs as inputs. Built without validation."""
        proto: TaskSpec = self.templates[self.template[i]]
        update: dict[str, object] = {}
        u = int(self.user[i])
        if u >= 0 and proto.user_location != self.users[u]:
            update["user_location"] = self.users[u]
        s = int(self.sticky[i])
        if s >= 0:
            key = f"{self.workflow_ids[self.wf[i]]}:{self.step_names[s]}"
            update["affinity"] = construct(
                Affinity,
                _AFFINITY_FIELDS,
                {"key": key, "mode": AffinityMode.SOFT, "wait_s": 30.0},
            )
        p0, p1 = self.parent_ptr[i], self.parent_ptr[i + 1]
        if p1 > p0:
            update["inputs"] = {
                f"in{p}": construct(
                    ArtifactRef,
                    _ARTIFACT_FIELDS,
                    {
                        "digest": f"sha256:{p:064x}",
                        "name": f"out-{p}",
                        "size": int(self.out_bytes[p]),
                        "media_type": "application/octet-stream",
                        "producer": ids[worker_of[p]],
                    },
                )
                for p in self.parent_idx[p0:p1].tolist()
            }
        return proto.model_copy(update=update) if update else proto

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
        if code is not None and code not in self._users:
            geo.location_for(code)  # unknown places fail here (once a code), with a did-you-mean
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
