"""The concrete task of a ready step, and the values its parents pass it.

:func:`step_task_spec` turns a step of a :class:`WorkflowSpec` into the
:class:`TaskSpec` the orchestrator submits once the step's parents succeeded;
:func:`upstream_values` collects the parents' results for its envelope. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from worldpool.workflow.naming import (
    DEFAULT_STICKY_WAIT_S,
    affinity_key,
    did_you_mean,
    format_pydantic_error,
    step_task_id,
)


def _step(spec: WorkflowSpec, name: str) -> StepSpec:
    for step in spec.steps:
        if step.name == name:
            return step
    raise WorkflowError(
        f"workflow {spec.id!r} has no step {name!r}."
        f"{did_you_mean(name, (s.name for s in spec.steps))}"
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
    inputs plus every parent's outputs keyed ``"{parent_step}/{artifact_name}"`` (and a
    parent's value too large for a record as ``"{parent_step}/result.json"``).
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
        if record.result_ref is not None:  # too large for the envelope's upstream values
            inputs.setdefault(f"{parent}/{record.result_ref.name}", record.result_ref)
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
