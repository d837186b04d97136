"""The orchestrator: owns task and workflow state, routes, delivers, retries, fails over.

It is the same code in embedded mode (memory backend, workers in-process) and distributed
mode (Redis, workers elsewhere). Three loops run while it is started:

* **dispatch** (:mod:`worldpool.orchestrator.dispatch`): routes pending tasks through the Router and
  sends a pass's winners in one backend call, compare-and-set on each record together
  with its slot reservation, so two replicas never dispatch one task twice;
* **results** (:mod:`worldpool.orchestrator.results`): applies workers' reports with fencing, retries
  with backoff, advances workflows (:mod:`worldpool.orchestrator.workflows`);
* **sweep** (:mod:`worldpool.orchestrator.sweep`; one replica at a time, under a lease): marks silent
  workers offline, reclaims and re-routes their tasks, enforces timeouts.

Lifecycle policy (what a failure means) lives in :mod:`worldpool.lifecycle`; what the
parts share in :mod:`worldpool.orchestrator.base`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson

from worldpool.errors import ValidationError
from worldpool.models import (
    Event,
    EventKind,
    JSONValue,
    RoutingDecision,
    TaskRecord,
    TaskSpec,
    Worker,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowStatus,
)
from worldpool.orchestrator.base import SWEEP_LEASE, OrchestratorBase
from worldpool.orchestrator.dispatch import Dispatcher
from worldpool.orchestrator.results import ResultsApplier
from worldpool.orchestrator.sweep import Sweeper
from worldpool.orchestrator.workflows import WorkflowRunner
from worldpool.tracing import new_traceparent
from worldpool.workflow import builder as wfl

__all__ = ["Orchestrator", "OrchestratorBase"]


class Orchestrator(Dispatcher, ResultsApplier, Sweeper, WorkflowRunner):
    """Submit tasks and workflows; the loops do the rest. Use ``async with``."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._loops:
            return
        self._stopping = False
        await self._refresh_pool()
        await self._resume_workflows()
        for loop in (self._dispatch_loop, self._results_loop, self._sweep_loop):
            self._loops.append(asyncio.create_task(loop(), name=f"{self.name}:{loop.__name__}"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        with contextlib.suppress(Exception):
            await self.backend.ack_results(self._unacked_results)
            self._unacked_results = []
        with contextlib.suppress(Exception):
            await self.backend.release_lease(SWEEP_LEASE, self.name)

    async def __aenter__(self) -> Orchestrator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def knows(self, task_id: str | None) -> bool:
        """Whether this replica wrote the task's record lately (it submitted it, say)."""
        return task_id is not None and self._records.get(task_id) is not None

    def wake(self) -> None:
        """Ask the dispatcher to look at the pending queue now (pool or queue changed)."""
        self._queue_empty = False  # something outside this replica may have queued tasks
        self._wake.set()

    # ------------------------------------------------------------------ public API

    async def submit(self, spec: TaskSpec) -> TaskRecord:
        """Queue a task. With an idempotency key, a second submit returns the first task."""
        _check_json(spec.payload, "payload")
        if spec.idempotency_key:
            existing = await self.backend.claim_idempotency_key(spec.idempotency_key, spec.id)
            if existing is not None and existing != spec.id:
                return await self.get_task(existing)
        record = TaskRecord(spec=spec, submitted_at=await self._now())
        record.meta["traceparent"] = new_traceparent()
        created = await self._create(record)
        if created is None:
            return await self.get_task(spec.id)  # already submitted (same deterministic id)
        return created

    async def submit_workflow(self, spec: WorkflowSpec) -> WorkflowRecord:
        """Validate the DAG, store it, and queue the steps that are ready."""
        wfl.validate(spec)
        for step in spec.steps:
            _check_json(step.task.payload, f"step {step.name!r} payload")
        record = WorkflowRecord(spec=spec, submitted_at=await self.backend.now())
        if not await self.backend.put_workflow(record, expect_version=0):
            existing = await self.backend.get_workflow(spec.id)
            if existing is None:
                raise ValidationError(f"workflow {spec.id!r} could not be stored; retry")
            return existing
        await self._emit_event(
            Event(kind=EventKind.WORKFLOW_SUBMITTED, workflow_id=spec.id, message=spec.name)
        )
        await self._advance_workflow(spec.id)
        return record

    async def list_workflows(self) -> list[WorkflowRecord]:
        return await self.backend.list_workflows()

    async def workflow_status(self, workflow_id: str) -> WorkflowStatus:
        """The status document (DESIGN.md) of one workflow, as of now."""
        record = await self.get_workflow(workflow_id)
        ids = list(record.task_ids.values())
        tasks = {r.spec.step or r.id: r for r in await self.backend.get_tasks(ids) if r is not None}
        workers = {w.id: w.profile for w in await self.backend.list_workers()}
        return wfl.status_document(record, tasks, workers, now=await self.backend.now())

    async def pool(self) -> list[Worker]:
        return await self.backend.list_workers()

    async def explain(self, spec: TaskSpec) -> RoutingDecision:
        """Dry run: where would this task go now, and why. Changes nothing."""
        await self._refresh_pool()
        record = TaskRecord(spec=spec)
        return self.router.decide(await self._context(record), self.pool_snapshot)

    async def cancel(self, ident: str) -> bool:
        """Cancel a task or a whole workflow. False if it had already ended."""
        workflow = await self.backend.get_workflow(ident)
        if workflow is not None:
            return await self._cancel_workflow(workflow)
        record = await self.get_task(ident)
        changed = await self._cancel_task(record, "cancelled by user")
        if changed and record.spec.workflow_id:
            await self._advance_workflow(record.spec.workflow_id)
        return changed

    async def wait_task(self, task_id: str, timeout_s: float = 60.0) -> TaskRecord:
        """Wait until the task ends (TimeoutError after ``timeout_s``)."""
        read_at = time.monotonic()  # a record this replica cached is current: no first read
        async with asyncio.timeout(timeout_s):
            while True:
                cached = self._records.get(task_id)  # a finished record is final:
                if cached is not None and cached.status.terminal:
                    self._records.drop(task_id)  # hand it over (nothing here reads it again)
                    return cached
                # This replica's own writes show in the cache; read the backend at first and
                # then every 0.5 s for what other replicas (or processes) change.
                if cached is None or time.monotonic() - read_at >= 0.5:
                    read_at = time.monotonic()
                    record = await self.get_task(task_id)
                    if record.status.terminal:
                        return record
                await self._records.wait_terminal(task_id, 0.5)

    async def wait_workflow(self, workflow_id: str, timeout_s: float = 60.0) -> WorkflowStatus:
        async with asyncio.timeout(timeout_s):
            while True:
                seen = self._generation
                status = await self.workflow_status(workflow_id)
                if status.status.terminal:
                    return status
                await self._wait_change(0.5, seen)


def _check_json(value: JSONValue, what: str) -> None:
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None
