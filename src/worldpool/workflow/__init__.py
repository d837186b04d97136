"""Workflows: DAGs of steps, pure and free of I/O.

:mod:`.builder` builds and validates a :class:`Workflow` and computes each step's concrete
task; :mod:`.dag` answers graph questions (order, ready set, state); :mod:`.status` builds
the status document and its ETA; :mod:`.files` loads a workflow from TOML or JSON.
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
