"""Workflow advancement: create the tasks of ready steps, settle the workflow's state,
stop the siblings of a failed step. Every step is idempotent, so an orchestrator killed
half-way redoes it on restart (:meth:`WorkflowRunner._resume_workflows`)."""

from __future__ import annotations

from collections.abc import Iterable

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
from worldpool.orchestrator.base import OrchestratorBase
from worldpool.tracing import new_traceparent
from worldpool.workflow import builder as wfl


class WorkflowRunner(OrchestratorBase):
    """DAG advancement on top of the task machinery."""

    async def _advance_workflow(self, workflow_id: str) -> None:
        """Create tasks for ready steps; settle the workflow's state. Idempotent."""
        for _ in range(5):
            record = await self.backend.get_workflow(workflow_id)
            if record is None or record.status.terminal:
                return
            spec = record.spec
            tasks = {
                r.spec.step: r
                for r in await self.backend.get_tasks(list(record.task_ids.values()))
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
                nxt.ended_at = await self.backend.now()
                nxt.error = next(
                    (t.error for t in tasks.values() if t.status is TaskStatus.FAILED), None
                )
            if not await self.backend.put_workflow(nxt, expect_version=record.version):
                continue
            for _step, task_spec, upstream in new_specs:
                await self._submit_step(task_spec, upstream)
            if state.terminal:
                await self._finish_workflow(nxt, tasks.values())
            return

    async def _resume_workflows(self) -> None:
        """At start: finish what a killed orchestrator left half-done (a step whose record
        or queue entry was not written, a workflow not advanced). Every step is idempotent."""
        for workflow in await self.backend.list_workflows():
            if workflow.status.terminal:
                continue
            for task in await self.backend.get_tasks(list(workflow.task_ids.values())):
                if task is not None and task.status is TaskStatus.PENDING:
                    await self.backend.add_pending(task.id, task.spec.priority)
                    self._queue_empty = False
            await self._advance_workflow(workflow.id)

    async def _submit_step(self, spec: TaskSpec, upstream: dict[str, JSONValue]) -> None:
        record = TaskRecord(spec=spec, submitted_at=await self._now())
        record.meta["upstream"] = upstream
        record.meta["traceparent"] = new_traceparent()
        await self._create(record)

    async def _finish_workflow(self, record: WorkflowRecord, tasks: Iterable[TaskRecord]) -> None:
        for task in tasks:  # a failed step ends the workflow: stop its siblings
            if not task.status.terminal:
                await self._cancel_task(task, "workflow ended")
        kind = {
            WorkflowState.SUCCEEDED: EventKind.WORKFLOW_SUCCEEDED,
            WorkflowState.FAILED: EventKind.WORKFLOW_FAILED,
        }.get(record.status, EventKind.WORKFLOW_CANCELLED)
        await self._emit_event(Event(kind=kind, workflow_id=record.id, message=record.error or ""))

    async def _cancel_workflow(self, record: WorkflowRecord) -> bool:
        if record.status.terminal:
            return False
        nxt = record.model_copy(deep=True)
        nxt.status = WorkflowState.CANCELLED
        nxt.ended_at = await self.backend.now()
        if not await self.backend.put_workflow(nxt, expect_version=record.version):
            return await self._cancel_workflow(await self.get_workflow(record.id))
        tasks = [t for t in await self.backend.get_tasks(list(record.task_ids.values())) if t]
        await self._finish_workflow(nxt, tasks)
        await self._notify()
        return True


def _parents(spec: WorkflowSpec, step: str) -> list[str]:
    return next(s.after for s in spec.steps if s.name == step)
