"""Workflows: DAGs of steps, pure and free of I/O.

:mod:`.builder` builds a :class:`Workflow`; :mod:`.validation` checks a whole spec;
:mod:`.steps` computes each step's concrete task; :mod:`.dag` answers graph questions
(order, ready set, state); :mod:`.status` builds the status document and its ETA;
:mod:`.files` loads a workflow from TOML or JSON; :mod:`.naming` holds the ids and
error wording they share.
"""

from worldpool.workflow.builder import (
    StepRef,
    Workflow,
    affinity_key,
    blocked_steps,
    estimate_completion_sec,
    ready_steps,
    status_document,
    step_task_id,
    step_task_spec,
    topological_order,
    upstream_values,
    validate,
    workflow_state,
)

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
