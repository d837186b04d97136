"""The workflow builder: declare steps, get a validated :class:`WorkflowSpec`. Pure, no I/O.

Build a workflow in hatchet's ``parents=[...]`` style::

    wf = Workflow("fix-auth-bug", user_location="tokyo")
    plan = wf.step("planning", handler="plan", capabilities=["planning"],
                   requirements=Requirements(gpu=True))
    und = wf.step("understanding", handler="analyze", capabilities=["coding"], after=[plan])
    fix = wf.step("fix", handler="fix", capabilities=["coding"], sticky_to=und)
    spec = wf.build()

The orchestrator then drives it with :func:`ready_steps` and :func:`step_task_spec`, and
watchers read :func:`status_document`. Files are loaded by
:func:`worldpool.workflow.files.load_workflow_file`. Validation lives in
:mod:`.validation`, step tasks in :mod:`.steps`, shared names in :mod:`.naming`; this
module re-exports what workflow code imports from it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pydantic

from worldpool.errors import WorkflowError, WorldpoolError
from worldpool.models import AffinityMode, StepSpec, TaskSpec, WorkflowSpec
from worldpool.workflow.dag import blocked_steps, ready_steps, topological_order, workflow_state
from worldpool.workflow.naming import (
    DEFAULT_STICKY_WAIT_S,
    TASK_ID_MAX,
    affinity_key,
    did_you_mean,
    format_pydantic_error,
    step_task_id,
)
from worldpool.workflow.status import estimate_completion_sec, status_document
from worldpool.workflow.steps import step_task_spec, upstream_values
from worldpool.workflow.validation import validate

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

# TaskSpec fields a step may not set: the workflow fills them in.
_RESERVED_FIELDS = frozenset({"id", "handler", "workflow_id", "step"})
_STEP_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# --------------------------------------------------------------------------- builder


class DeclaredHandler(Protocol):
    """A handler declared with ``@worldpool.handler`` (``worldpool.typed``), as a step
    names it: its name, the task fields it sets, its typed input as JSON."""

    @property
    def name(self) -> str: ...

    def task_defaults(self) -> dict[str, Any]: ...

    def dump_input(self, value: Any) -> dict[str, Any]: ...


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
        handler: str | DeclaredHandler,
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
        if not isinstance(handler, str):  # @worldpool.handler: its fields, its typed input
            if "payload" in task_fields:
                try:
                    task_fields["payload"] = handler.dump_input(task_fields["payload"])
                except WorldpoolError as exc:
                    raise WorkflowError(f"step {name!r}: {exc}") from None
            task_fields = {**handler.task_defaults(), **task_fields}
            handler = handler.name
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
                    f"step {step!r}: unknown task field {key!r}.{did_you_mean(key, allowed)} "
                    f"Steps accept: {', '.join(sorted(allowed | {'after', 'sticky_to'}))}"
                )


def _default_id(name: str) -> str:
    """A readable unique id: the name as a slug plus a random suffix."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "wf"
    return f"{slug}-{uuid.uuid4().hex[:8]}"
