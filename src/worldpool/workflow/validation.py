"""Validation of a whole workflow: every problem of a :class:`WorkflowSpec` at once.

:func:`validate` is what :meth:`Workflow.build <worldpool.workflow.builder.Workflow.build>`
and the orchestrator's submit run. Pure, no I/O.
"""

from __future__ import annotations

from worldpool.errors import WorkflowError
from worldpool.models import WorkflowSpec
from worldpool.workflow.dag import ancestors_of, find_cycle
from worldpool.workflow.naming import TASK_ID_MAX, did_you_mean, step_task_id


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
                    f"workflow.{did_you_mean(parent, known)}"
                )
        if step.sticky_to is not None and step.sticky_to not in known:
            problems.append(
                f"step {step.name!r} is sticky_to {step.sticky_to!r}, which is not a step of "
                f"this workflow.{did_you_mean(step.sticky_to, known)}"
            )
        task_id = step_task_id(spec.id, step.name)
        if len(task_id) > TASK_ID_MAX:
            problems.append(
                f"step {step.name!r}: its task id {task_id[:40]}... would be {len(task_id)} "
                f"characters (limit {TASK_ID_MAX}); shorten the workflow id or the step name"
            )
        if known_handlers is not None and step.task.handler not in known_handlers:
            hint = did_you_mean(step.task.handler, known_handlers)
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
