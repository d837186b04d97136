"""DAG workflows: a builder, validation, and the concrete task of each step. Pure, no I/O.

Build a workflow in hatchet's ``parents=[...]`` style::

    wf = Workflow("fix-auth-bug", user_location="tokyo")
    plan = wf.step("planning", handler="plan", capabilities=["planning"],
                   requirements=Requirements(gpu=True))
    und = wf.step("understanding", handler="analyze", capabilities=["coding"], after=[plan])
    fix = wf.step("fix", handler="fix", capabilities=["coding"], sticky_to=und)
    spec = wf.build()

The orchestrator then drives it with :func:`ready_steps` and :func:`step_task_spec`, and
watchers read :func:`status_document`. Files are loaded by
:func:`worldpool.workflow.files.load_workflow_file`.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from worldpool.errors import WorkflowError
from worldpool.models import (
    Affinity,
    AffinityMode,
    ArtifactRef,
    JSONValue,
    StepSpec,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    WorkflowSpec,
)
from worldpool.workflow.dag import (
    ancestors_of,
    blocked_steps,
    find_cycle,
    ready_steps,
    topological_order,
    workflow_state,
)
from worldpool.workflow.status import estimate_completion_sec, status_document

__all__ = [
    "StepRef",
    "Workflow",
    "affinity_key",
    "blocked_steps",
    "estimate_completion_sec",
    "ready_steps",
    "status_document",
    "step_task_id",
    "step_task_spec",
    "topological_order",
    "upstream_values",
    "validate",
    "workflow_state",
]

TASK_ID_MAX = 128
DEFAULT_STICKY_WAIT_S = 5.0
# TaskSpec fields a step may not set: the workflow fills them in.
_RESERVED_FIELDS = frozenset({"id", "handler", "workflow_id", "step"})
_STEP_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def step_task_id(workflow_id: str, step: str) -> str:
    """The deterministic task id of a step, so re-submitting a step is idempotent."""
    return f"{workflow_id}.{step}"


def affinity_key(workflow_id: str, step: str) -> str:
    """The affinity key held by the worker that ran ``step`` (what ``sticky_to`` follows)."""
    return f"{workflow_id}:{step}"


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def format_pydantic_error(err: pydantic.ValidationError, prefix: str = "") -> str:
    """One ``path: message`` per problem, e.g. ``requirements.min_vram_gb: ...``."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        where = ".".join(p for p in (prefix, path) if p)
        lines.append(f"{where or '(top level)'}: {e['msg']}")
    return "; ".join(lines)


# --------------------------------------------------------------------------- builder


@dataclass(frozen=True, slots=True)
class StepRef:
    """A handle on a declared step; pass it to ``after=`` or ``sticky_to=``."""

    workflow_id: str
    name: str


StepLike = StepRef | str


class Workflow:
    """Declare steps, then :meth:`build` a validated :class:`WorkflowSpec`."""

    def __init__(
        self,
        name: str,
        *,
        id: str | None = None,  # mirrors WorkflowSpec.id
        user_location: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.id = id or _default_id(name)
        self.user_location = user_location
        self.labels = dict(labels or {})
        self._steps: dict[str, StepSpec] = {}

    def step(
        self,
        name: str,
        *,
        handler: str,
        after: Iterable[StepLike] | StepLike = (),
        sticky_to: StepLike | None = None,
        sticky_mode: AffinityMode | str = AffinityMode.SOFT,
        sticky_wait_s: float = DEFAULT_STICKY_WAIT_S,
        **task_fields: Any,
    ) -> StepRef:
        """Declare a step; ``task_fields`` are any :class:`TaskSpec` fields.

        ``after`` takes step handles or names (names may refer to steps declared later).
        ``sticky_to`` runs this step on the worker that ran that step (soft affinity by
        default, waiting at most ``sticky_wait_s`` for it) and implies ``after`` it.
        """
        if not _STEP_NAME_RE.match(name):
            raise WorkflowError(
                f"step name {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-'"
            )
        self._check_new(name)
        self._check_fields(name, task_fields)
        if isinstance(after, StepRef | str):  # after="plan" means one parent, not four
            after = [after]
        parents = [self._name_of(ref, name, "after") for ref in after]
        sticky = None if sticky_to is None else self._name_of(sticky_to, name, "sticky_to")
        if sticky is not None:
            if "affinity" in task_fields:
                raise WorkflowError(
                    f"step {name!r} sets both sticky_to and affinity; sticky_to already "
                    "sets the affinity, so drop one of them"
                )
            if sticky not in parents:
                parents.append(sticky)
            task_fields["affinity"] = {
                "key": affinity_key(self.id, sticky),
                "mode": sticky_mode,
                "wait_s": sticky_wait_s,
            }
        fields = {
            **task_fields,
            "id": step_task_id(self.id, name)[:TASK_ID_MAX],
            "handler": handler,
            "workflow_id": self.id,
            "step": name,
        }
        try:
            task = TaskSpec.model_validate(fields)
        except pydantic.ValidationError as err:
            raise WorkflowError(
                f"step {name!r} of workflow {self.name!r} is invalid: {format_pydantic_error(err)}"
            ) from None
        self._steps[name] = StepSpec(
            name=name, task=task, after=list(dict.fromkeys(parents)), sticky_to=sticky
        )
        return StepRef(self.id, name)

    def add_step(self, step: StepSpec) -> StepRef:
        """Add a ready-made :class:`StepSpec` (for example one read from a file)."""
        self._check_new(step.name)
        self._steps[step.name] = step
        return StepRef(self.id, step.name)

    def build(self, known_handlers: set[str] | None = None) -> WorkflowSpec:
        """The :class:`WorkflowSpec`, validated (see :func:`validate`)."""
        if not self._steps:
            raise WorkflowError(
                f"workflow {self.name!r} has no steps; declare at least one with wf.step(...)"
            )
        try:
            spec = WorkflowSpec(
                id=self.id,
                name=self.name,
                steps=list(self._steps.values()),
                user_location=self.user_location,
                labels=self.labels,
            )
        except pydantic.ValidationError as err:
            raise WorkflowError(
                f"workflow {self.name!r} is invalid: {format_pydantic_error(err)}"
            ) from None
        validate(spec, known_handlers)
        return spec

    def _check_new(self, name: str) -> None:
        if name in self._steps:
            raise WorkflowError(
                f"step {name!r} is already declared in workflow {self.name!r}; "
                "step names must be unique, choose another name"
            )

    def _name_of(self, ref: StepLike, step: str, field: str) -> str:
        if isinstance(ref, StepRef):
            if ref.workflow_id != self.id:
                raise WorkflowError(
                    f"step {step!r}: {field} refers to step {ref.name!r} of another "
                    f"workflow ({ref.workflow_id!r}); use a step of this workflow"
                )
            return ref.name
        if isinstance(ref, str):
            return ref
        raise WorkflowError(
            f"step {step!r}: {field} takes step handles or step names, not {type(ref).__name__}"
        )

    def _check_fields(self, step: str, fields: Mapping[str, Any]) -> None:
        for key in fields:
            if key in _RESERVED_FIELDS:
                raise WorkflowError(
                    f"step {step!r}: {key!r} is set by the workflow; remove it"
                    + (" and pass handler= instead" if key == "handler" else "")
                )
            if key not in TaskSpec.model_fields:
                allowed = set(TaskSpec.model_fields) - _RESERVED_FIELDS
                raise WorkflowError(
                    f"step {step!r}: unknown task field {key!r}.{_did_you_mean(key, allowed)} "
                    f"Steps accept: {', '.join(sorted(allowed | {'after', 'sticky_to'}))}"
                )


def _default_id(name: str) -> str:
    """A readable unique id: the name as a slug plus a random suffix."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "wf"
    return f"{slug}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- validation


def validate(spec: WorkflowSpec, known_handlers: set[str] | None = None) -> None:
    """Raise ``WorkflowError`` listing every problem of ``spec``; return if it is sound.

    Checks: duplicate step names, ``after``/``sticky_to`` naming unknown steps (with a
    did-you-mean), cycles (named as a path), ``sticky_to`` a step that is not an ancestor,
    task ids that would be too long, and, when ``known_handlers`` is given, handlers no
    worker registers.
    """
    names = [step.name for step in spec.steps]
    known = set(names)
    problems: list[str] = []
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"step name {dup!r} is used twice; step names must be unique")
    for step in spec.steps:
        for parent in step.after:
            if parent == step.name:
                problems.append(f"step {step.name!r} lists itself in after; remove it")
            elif parent not in known:
                problems.append(
                    f"step {step.name!r} runs after {parent!r}, which is not a step of this "
                    f"workflow.{_did_you_mean(parent, known)}"
                )
        if step.sticky_to is not None and step.sticky_to not in known:
            problems.append(
                f"step {step.name!r} is sticky_to {step.sticky_to!r}, which is not a step of "
                f"this workflow.{_did_you_mean(step.sticky_to, known)}"
            )
        task_id = step_task_id(spec.id, step.name)
        if len(task_id) > TASK_ID_MAX:
            problems.append(
                f"step {step.name!r}: its task id {task_id[:40]}... would be {len(task_id)} "
                f"characters (limit {TASK_ID_MAX}); shorten the workflow id or the step name"
            )
        if known_handlers is not None and step.task.handler not in known_handlers:
            hint = _did_you_mean(step.task.handler, known_handlers)
            listed = ", ".join(sorted(known_handlers)) or "none"
            problems.append(
                f"step {step.name!r} uses handler {step.task.handler!r}, which no worker "
                f"registers.{hint} Known handlers: {listed}"
            )
    cycle = find_cycle(spec)
    if cycle is not None:
        problems.append(
            f"steps form a cycle: {' -> '.join(cycle)} (each step runs after the one before "
            "it); remove one of these `after` dependencies"
        )
    else:
        for step in spec.steps:
            sticky = step.sticky_to
            if (
                sticky in known
                and sticky != step.name
                and sticky not in ancestors_of(spec, step.name)
            ):
                problems.append(
                    f"step {step.name!r} is sticky_to {sticky!r}, which does not run before "
                    f"it; add {sticky!r} to its after (a step can only follow the worker of "
                    "a step that has already run)"
                )
            elif sticky == step.name:
                problems.append(f"step {step.name!r} is sticky_to itself; remove sticky_to")
    if len(problems) == 1:
        raise WorkflowError(f"workflow {spec.name!r}: {problems[0]}")
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise WorkflowError(f"workflow {spec.name!r} has {len(problems)} problems:\n{listed}")


# --------------------------------------------------------------------------- step tasks


def _step(spec: WorkflowSpec, name: str) -> StepSpec:
    for step in spec.steps:
        if step.name == name:
            return step
    raise WorkflowError(
        f"workflow {spec.id!r} has no step {name!r}."
        f"{_did_you_mean(name, (s.name for s in spec.steps))}"
    )


def _parent_records(
    spec: WorkflowSpec, step: StepSpec, parents: Mapping[str, TaskRecord]
) -> dict[str, TaskRecord]:
    records: dict[str, TaskRecord] = {}
    for parent in step.after:
        record = parents.get(parent)
        if record is None:
            raise WorkflowError(
                f"step {step.name!r} of workflow {spec.id!r} needs the task record of its "
                f"parent {parent!r}; pass every parent's record, keyed by step name"
            )
        if record.status != TaskStatus.SUCCEEDED:
            raise WorkflowError(
                f"step {step.name!r} cannot start: its parent {parent!r} is "
                f"{record.status.value}, not succeeded"
            )
        records[parent] = record
    return records


def step_task_spec(
    spec: WorkflowSpec, step_name: str, parents: Mapping[str, TaskRecord]
) -> TaskSpec:
    """The concrete task to submit for ``step_name``, once its parents succeeded.

    ``parents`` maps step names to task records (extra entries are ignored). The task
    gets the id ``"{workflow_id}.{step}"`` (also the idempotency key unless the step sets
    one), the workflow's user location unless the step has its own, the ``sticky_to``
    affinity keyed ``"{workflow_id}:{sticky_to}"``, and as ``inputs`` the step's own
    inputs plus every parent's outputs keyed ``"{parent_step}/{artifact_name}"``.
    """
    step = _step(spec, step_name)
    template = step.task
    inputs: dict[str, ArtifactRef] = dict(template.inputs)
    for parent, record in _parent_records(spec, step, parents).items():
        for name, ref in record.outputs.items():
            key = f"{parent}/{name}"
            if key in inputs:
                raise WorkflowError(
                    f"step {step.name!r}: its own input {key!r} clashes with the output "
                    f"{name!r} of parent {parent!r}; rename the step's input"
                )
            inputs[key] = ref
    affinity = template.affinity
    if step.sticky_to is not None:
        affinity = Affinity(
            key=affinity_key(spec.id, step.sticky_to),
            mode=affinity.mode if affinity else AffinityMode.SOFT,
            wait_s=affinity.wait_s if affinity else DEFAULT_STICKY_WAIT_S,
        )
    task_id = step_task_id(spec.id, step.name)
    update: dict[str, Any] = {
        "id": task_id,
        "workflow_id": spec.id,
        "step": step.name,
        "user_location": template.user_location or spec.user_location,
        "affinity": affinity,
        "idempotency_key": template.idempotency_key or task_id,
        "inputs": inputs,
    }
    try:
        return TaskSpec.model_validate({**dict(template), **update})
    except pydantic.ValidationError as err:
        raise WorkflowError(
            f"step {step.name!r} of workflow {spec.id!r} does not make a valid task: "
            f"{format_pydantic_error(err)}"
        ) from None


def upstream_values(
    spec: WorkflowSpec, step: str, parents: Mapping[str, TaskRecord]
) -> dict[str, JSONValue]:
    """The result values of ``step``'s parents, keyed by parent step name."""
    records = _parent_records(spec, _step(spec, step), parents)
    return {name: record.result for name, record in records.items()}
