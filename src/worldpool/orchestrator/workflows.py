"""Workflow advancement: create the tasks of ready steps, settle the workflow's state,
stop the siblings of a failed step. Every step is idempotent, so an orchestrator killed
half-way redoes it on restart (:meth:`WorkflowAdvancer.resume`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from worldpool.backends.base import Backend
from worldpool.models import (
    Event,
    EventKind,
    JSONValue,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowState,
)
from worldpool.orchestrator.clock import BackendClock
from worldpool.orchestrator.pending import PendingQueue
from worldpool.orchestrator.signals import Changes
from worldpool.orchestrator.transitions import CAS_ATTEMPTS, Transitions
from worldpool.tracing import hop, hop_attributes
from worldpool.workflow import builder as wfl

log = logging.getLogger("worldpool.orchestrator.core")

CreateTask = Callable[[TaskRecord], Awaitable[TaskRecord | None]]


class WorkflowAdvancer:
    """DAG advancement on top of the task machinery. ``create`` stores (and queues or
    sends) a new task: the dispatcher's :meth:`~.dispatch.Dispatcher.create`."""

    def __init__(
        self,
        backend: Backend,
        clock: BackendClock,
        pending: PendingQueue,
        changes: Changes,
        transitions: Transitions,
        create: CreateTask,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._pending = pending
        self._changes = changes
        self._transitions = transitions
        self._create = create

    async def advance(self, workflow_id: str) -> None:
        """Create tasks for ready steps; settle the workflow's state. Idempotent."""
        for _ in range(CAS_ATTEMPTS):
            record = await self._backend.get_workflow(workflow_id)
            if record is None or record.status.terminal:
                return
            if await self._advance_once(record):
                return
        log.warning(
            "gave up advancing workflow %s: %d writes in a row conflicted with other "
            "writers (the next step that ends advances it again)",
            workflow_id,
            CAS_ATTEMPTS,
        )

    async def _advance_once(self, record: WorkflowRecord) -> bool:
        """One compare-and-set attempt at advancing ``record``. False on a conflict."""
        spec = record.spec
        tasks = {
            r.spec.step: r
            for r in await self._backend.get_tasks(list(record.task_ids.values()))
            if r is not None and r.spec.step
        }
        statuses = {name: t.status for name, t in tasks.items()}
        new_specs = []
        for step in wfl.ready_steps(spec, statuses):
            if step in record.task_ids:
                if step not in tasks:  # an orchestrator died between the two writes
                    parents = {p: tasks[p] for p in _parents(spec, step)}
                    await self._submit_step(
                        wfl.step_task_spec(spec, step, parents),
                        wfl.upstream_values(spec, step, parents),
                    )
                continue
            parents = {p: tasks[p] for p in _parents(spec, step)}
            new_specs.append(
                (
                    step,
                    wfl.step_task_spec(spec, step, parents),
                    wfl.upstream_values(spec, step, parents),
                )
            )
        state = wfl.workflow_state(spec, statuses)
        nxt = record.model_copy(deep=True)
        for step, task_spec, _ in new_specs:
            nxt.task_ids[step] = task_spec.id
        if new_specs and state is WorkflowState.PENDING:
            state = WorkflowState.IN_PROGRESS
        nxt.status = state
        if state.terminal:
            nxt.ended_at = await self._backend.now()
            nxt.error = next(
                (t.error for t in tasks.values() if t.status is TaskStatus.FAILED), None
            )
        if not await self._backend.put_workflow(nxt, expect_version=record.version):
            return False
        for _step, task_spec, upstream in new_specs:
            await self._submit_step(task_spec, upstream)
        if state.terminal:
            await self._finish(nxt, tasks.values())
        return True

    async def resume(self) -> None:
        """At start: finish what a killed orchestrator left half-done (a step whose record
        or queue entry was not written, a workflow not advanced). Every step is idempotent."""
        for workflow in await self._backend.list_workflows():
            if workflow.status.terminal:
                continue
            for task in await self._backend.get_tasks(list(workflow.task_ids.values())):
                if task is not None and task.status is TaskStatus.PENDING:
                    await self._pending.add(task.id, task.spec.priority)
            await self.advance(workflow.id)

    async def cancel(self, record: WorkflowRecord) -> bool:
        """Cancel a workflow and its unfinished steps. False if it had ended already (or
        could not be written, which is logged with its id)."""
        for _ in range(CAS_ATTEMPTS):
            if record.status.terminal:
                return False
            nxt = record.model_copy(deep=True)
            nxt.status = WorkflowState.CANCELLED
            nxt.ended_at = await self._backend.now()
            if await self._backend.put_workflow(nxt, expect_version=record.version):
                tasks = await self._backend.get_tasks(list(record.task_ids.values()))
                await self._finish(nxt, [t for t in tasks if t])
                self._changes.notify()
                return True
            fresh = await self._backend.get_workflow(record.id)
            if fresh is None:
                return False
            record = fresh
        log.warning(
            "gave up cancelling workflow %s: %d writes in a row conflicted with other writers",
            record.id,
            CAS_ATTEMPTS,
        )
        return False

    async def retry(self, record: WorkflowRecord) -> list[str]:
        """Run a failed or cancelled workflow on from its failed step: the steps that
        failed or were cancelled are queued again, the steps after them follow as their
        parents succeed. Returns the steps queued again ([] if the workflow had not
        ended badly, or another writer changed it first)."""
        if record.status not in (WorkflowState.FAILED, WorkflowState.CANCELLED):
            return []
        nxt = record.model_copy(deep=True)
        nxt.status = WorkflowState.IN_PROGRESS
        nxt.ended_at = None
        nxt.error = None
        if not await self._backend.put_workflow(nxt, expect_version=record.version):
            return []
        tasks = await self._backend.get_tasks(list(record.task_ids.values()))
        retried = [
            t.spec.step or t.id for t in tasks if t is not None and await self._transitions.retry(t)
        ]
        await self.advance(record.id)
        return sorted(retried)

    async def _submit_step(self, spec: TaskSpec, upstream: dict[str, JSONValue]) -> None:
        record = TaskRecord(
            spec=spec,
            submitted_at=await self._clock.now(),
            upstream=upstream,
            traceparent=hop("worldpool.submit", None, hop_attributes(spec)),
        )
        await self._create(record)

    async def _finish(self, record: WorkflowRecord, tasks: Iterable[TaskRecord]) -> None:
        for task in tasks:  # a failed step ends the workflow: stop its siblings
            if not task.status.terminal:
                await self._transitions.cancel(task, "workflow ended")
        kind = {
            WorkflowState.SUCCEEDED: EventKind.WORKFLOW_SUCCEEDED,
            WorkflowState.FAILED: EventKind.WORKFLOW_FAILED,
        }.get(record.status, EventKind.WORKFLOW_CANCELLED)
        await self._transitions.emit_event(
            Event(kind=kind, workflow_id=record.id, message=record.error or "")
        )


def _parents(spec: WorkflowSpec, step: str) -> list[str]:
    return next(s.after for s in spec.steps if s.name == step)
