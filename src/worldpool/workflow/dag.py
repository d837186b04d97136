"""Graph queries on a :class:`~worldpool.models.WorkflowSpec`: order, ready set, state.

Pure functions of a spec and the current task status of each step; no I/O. A step's
status is the status of its task; a step that has no task yet is simply absent from the
``statuses`` mapping. Import these through :mod:`worldpool.workflow.builder`.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from worldpool.errors import WorkflowError
from worldpool.models import TaskStatus, WorkflowSpec, WorkflowState

Statuses = Mapping[str, TaskStatus]

# A parent in one of these states means its children can never run.
DOOMED = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


def parents_of(spec: WorkflowSpec) -> dict[str, list[str]]:
    """step -> the steps it runs after, in declaration order."""
    return {step.name: list(step.after) for step in spec.steps}


def children_of(spec: WorkflowSpec) -> dict[str, list[str]]:
    """step -> the steps that run after it, in declaration order."""
    children: dict[str, list[str]] = {step.name: [] for step in spec.steps}
    for step in spec.steps:
        for parent in step.after:
            if parent in children:
                children[parent].append(step.name)
    return children


def find_cycle(spec: WorkflowSpec) -> list[str] | None:
    """One dependency cycle as a path in run order (``[a, b, c, a]``), or None.

    Edges to unknown steps are ignored here;
    :func:`worldpool.workflow.validation.validate` reports them separately.
    """
    children = children_of(spec)
    colour: dict[str, int] = {}  # absent: unvisited, 1: on the current path, 2: done
    for root in children:
        if root in colour:
            continue
        path: list[str] = [root]
        stack = [iter(children[root])]
        colour[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif child not in colour:
                colour[child] = 1
                path.append(child)
                stack.append(iter(children[child]))
    return None


def _cycle_error(spec: WorkflowSpec, cycle: list[str]) -> WorkflowError:
    return WorkflowError(
        f"workflow {spec.name!r}: steps form a cycle: {' -> '.join(cycle)} (each step runs "
        "after the one before it); remove one of these `after` dependencies"
    )


def topological_order(spec: WorkflowSpec) -> list[str]:
    """Step names so that every step comes after all of its parents.

    Stable: among steps that could go next, the one declared first goes first, so a
    workflow declared in a valid order keeps that order. Raises ``WorkflowError`` naming
    the cycle if there is one.
    """
    index = {step.name: i for i, step in enumerate(spec.steps)}
    parents = parents_of(spec)
    children = children_of(spec)
    waiting = {name: sum(1 for p in ps if p in index) for name, ps in parents.items()}
    heap = [index[name] for name, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        name = spec.steps[heapq.heappop(heap)].name
        order.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(heap, index[child])
    if len(order) < len(spec.steps):
        raise _cycle_error(spec, find_cycle(spec) or ["?"])
    return order


def ancestors_of(spec: WorkflowSpec, step: str) -> set[str]:
    """Every step that must finish before ``step`` (parents, their parents, ...)."""
    parents = parents_of(spec)
    seen: set[str] = set()
    todo = list(parents.get(step, []))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(parents.get(name, []))
    return seen


def _check_statuses(spec: WorkflowSpec, statuses: Statuses) -> None:
    unknown = sorted(set(statuses) - {step.name for step in spec.steps})
    if unknown:
        raise WorkflowError(
            f"statuses name step(s) {', '.join(map(repr, unknown))} that workflow "
            f"{spec.id!r} does not have; key statuses by the spec's step names"
        )


def ready_steps(spec: WorkflowSpec, statuses: Statuses) -> list[str]:
    """Steps with no task yet whose parents all SUCCEEDED, in topological order.

    Parallel branches whose parents are done become ready together. A step that already
    has a task (whatever its status) is never ready again.
    """
    _check_statuses(spec, statuses)
    parents = parents_of(spec)
    return [
        name
        for name in topological_order(spec)
        if name not in statuses
        and all(statuses.get(p) == TaskStatus.SUCCEEDED for p in parents[name])
    ]


def blocked_steps(spec: WorkflowSpec, statuses: Statuses) -> list[str]:
    """Steps with no task yet that can never run: an ancestor FAILED or was CANCELLED."""
    _check_statuses(spec, statuses)
    parents = parents_of(spec)
    doomed: set[str] = set()
    blocked: list[str] = []
    for name in topological_order(spec):
        status = statuses.get(name)
        if status in DOOMED:
            doomed.add(name)
        elif status is None and any(p in doomed for p in parents[name]):
            doomed.add(name)
            blocked.append(name)
    return blocked


def workflow_state(spec: WorkflowSpec, statuses: Statuses) -> WorkflowState:
    """The workflow's state from its steps' states.

    * SUCCEEDED: every step succeeded.
    * PENDING: no step has been dispatched yet.
    * FAILED / CANCELLED: nothing can make progress any more (every step is finished or
      blocked) and some step failed (FAILED wins) or was cancelled. Independent branches
      are left to finish first; an orchestrator that wants fail-fast cancels them.
    * IN_PROGRESS: otherwise.
    """
    _check_statuses(spec, statuses)
    names = [step.name for step in spec.steps]
    if all(statuses.get(n) == TaskStatus.SUCCEEDED for n in names):
        return WorkflowState.SUCCEEDED
    if all(statuses.get(n) in (None, TaskStatus.PENDING) for n in names):
        return WorkflowState.PENDING
    blocked = set(blocked_steps(spec, statuses))
    settled = all(n in blocked or (n in statuses and statuses[n].terminal) for n in names)
    if not settled:
        return WorkflowState.IN_PROGRESS
    if TaskStatus.FAILED in statuses.values():
        return WorkflowState.FAILED
    return WorkflowState.CANCELLED
