"""The orchestrator: owns task and workflow state, routes, delivers, retries, fails over.

It is the same code in embedded mode (memory backend, workers in-process) and distributed
mode (Redis, workers elsewhere). :class:`Orchestrator` composes its parts, each given what
it uses, and runs three loops while it is started:

* **dispatch** (:class:`~.dispatch.Dispatcher`): routes pending tasks through the Router
  and sends a pass's winners in one backend call, compare-and-set on each record together
  with its slot reservation, so two replicas never dispatch one task twice;
* **results** (:class:`~.results.ResultsApplier`): applies workers' reports with fencing,
  retries with backoff, advances workflows (:class:`~.workflows.WorkflowAdvancer`);
* **sweep** (:class:`~.sweep.Sweeper`; one replica at a time, under a lease): marks silent
  workers offline, reclaims and re-routes their tasks, enforces timeouts.

They share :class:`~.transitions.Transitions` (task writes, their events and follow-ups)
and state with one owner each: :class:`~.records.RecordCache`,
:class:`~.pending.PendingQueue`, :class:`~.pool.PoolView`, :class:`~.signals.Changes`.
Lifecycle policy (what a failure means) lives in :mod:`worldpool.lifecycle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import orjson

from worldpool.artifacts.store import ArtifactStore
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.errors import NotFoundError, ValidationError
from worldpool.models import (
    Event,
    EventKind,
    JSONValue,
    RoutingDecision,
    TaskRecord,
    TaskResult,
    TaskSpec,
    Worker,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowStatus,
)
from worldpool.orchestrator.clock import BackendClock
from worldpool.orchestrator.dispatch import Dispatcher
from worldpool.orchestrator.pending import PendingQueue
from worldpool.orchestrator.pool import PoolView
from worldpool.orchestrator.records import RECORD_CACHE_MAX, SUBMIT_ONLY_CACHE_MAX, RecordCache
from worldpool.orchestrator.results import ResultsApplier
from worldpool.orchestrator.signals import Changes
from worldpool.orchestrator.sweep import Sweeper
from worldpool.orchestrator.transitions import Transitions
from worldpool.orchestrator.trust import ReportGate
from worldpool.orchestrator.workflows import WorkflowAdvancer
from worldpool.routing import PoolSnapshot, Router, RoutingPolicy
from worldpool.tracing import hop, hop_attributes
from worldpool.workflow import builder as wfl

__all__ = ["Orchestrator"]


class Orchestrator:
    """Submit tasks and workflows; the loops do the rest. Use ``async with``."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings | None = None,
        *,
        router: Router | None = None,
        artifacts: ArtifactStore | None = None,
        name: str = "orchestrator",
        seed: int | None = None,
        submit_only: bool = False,
    ) -> None:
        """``submit_only``: the submit side of a client (never started): it routes its own
        submits and sends them in their create step when the pending queue is empty then
        (checked by the backend, as it cannot see the queue), and it refuses no worker."""
        self.backend = backend
        self.settings = settings = settings or Settings()
        self.router = router or Router(RoutingPolicy.from_settings(settings))
        self.artifacts = artifacts or ArtifactStore(backend, settings)
        self.name = name
        rng = random.Random(seed)
        # State, one owner each.
        # A client (submit only) never writes a record again after its create: caching
        # every task it sent would only grow the heap every garbage collection walks.
        self.records = RecordCache(SUBMIT_ONLY_CACHE_MAX if submit_only else RECORD_CACHE_MAX)
        self.pending = PendingQueue(backend)
        # Signed reports, proven workers.
        self.gate = ReportGate(backend, settings.secret, refuses=not submit_only)
        self.pool_view = PoolView(backend, settings, self.gate)
        self.changes = Changes()
        clock = BackendClock(backend)
        self._clock = clock
        # The parts, each given what it uses.
        self.transitions = Transitions(
            backend,
            clock,
            self.records,
            self.pending,
            self.pool_view,
            self.changes,
            rng,
            advance_workflow=self._advance_workflow,
            explain=self._explain_now,
        )
        self.dispatcher = Dispatcher(
            backend,
            settings,
            self.router,
            self.pool_view,
            self.pending,
            self.records,
            clock,
            self.changes,
            self.transitions,
            submit_only=submit_only,
        )
        self.results = ResultsApplier(
            backend,
            name,
            clock,
            self.records,
            self.pending,
            self.changes,
            self.transitions,
            rng,
            self.gate,
        )
        self.sweeper = Sweeper(
            backend,
            settings,
            name,
            self.pending,
            self.changes,
            self.transitions,
            rng,
            self.pool_view,
        )
        self.workflows = WorkflowAdvancer(
            backend, clock, self.pending, self.changes, self.transitions, self.dispatcher.create
        )
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pool_snapshot(self) -> PoolSnapshot:
        """The pool as this replica last saw it (kept honest locally between re-reads)."""
        return self.pool_view.snapshot

    async def _advance_workflow(self, workflow_id: str) -> None:
        """What transitions call when a step's task ends: the workflow part is built after
        them (it creates tasks through the dispatcher, which uses them), so they are given
        this rather than the part itself."""
        await self.workflows.advance(workflow_id)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether its loops run (an API-only process holds one that does not)."""
        return bool(self._loops)

    async def start(self) -> None:
        if self._loops:
            return
        self._stopping = False
        await self.pool_view.refresh()
        await self.workflows.resume()
        for part, loop in (
            ("dispatch", self.dispatcher.run),
            ("results", self.results.run),
            ("sweep", self.sweeper.run),
        ):
            self._loops.append(
                asyncio.create_task(loop(self._is_stopping), name=f"{self.name}:{part}")
            )

    def _is_stopping(self) -> bool:
        return self._stopping

    async def stop(self) -> None:
        self._stopping = True  # the loops end even if a cancellation is lost
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        await self.results.ack_applied()
        await self.sweeper.release_lease()

    async def __aenter__(self) -> Orchestrator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def knows(self, task_id: str | None) -> bool:
        """Whether this replica wrote the task's record lately (it submitted it, say)."""
        return task_id is not None and self.records.get(task_id) is not None

    def wake(self) -> None:
        """Ask the dispatcher to look at the pending queue now (pool or queue changed)."""
        self.pending.maybe_queued_elsewhere()
        self.changes.dispatcher.set()

    # ------------------------------------------------------------------ the loops' steps

    async def dispatch_once(self) -> int:
        """One dispatch pass (see :meth:`Dispatcher.dispatch_once`)."""
        return await self.dispatcher.dispatch_once()

    async def apply_results(self, results: list[TaskResult]) -> None:
        await self.results.apply_results(results)

    async def apply_result(self, result: TaskResult) -> None:
        await self.results.apply_result(result)

    async def sweep_once(self) -> None:
        await self.sweeper.sweep_once()

    async def fail_over(self, worker_id: str, reason: str) -> int:
        """Declare a worker dead and re-route everything it held. Returns tasks moved."""
        return await self.sweeper.fail_over(worker_id, reason)

    async def get_task(self, task_id: str) -> TaskRecord:
        record = await self.backend.get_task(task_id)
        if record is None:
            raise NotFoundError("task", task_id)
        return record

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord:
        record = await self.backend.get_workflow(workflow_id)
        if record is None:
            raise NotFoundError("workflow", workflow_id)
        return record

    # ------------------------------------------------------------------ public API

    async def submit(self, spec: TaskSpec) -> TaskRecord:
        """Queue a task. With an idempotency key, a second submit returns the first task."""
        _check_json(spec.payload, "payload")
        if spec.idempotency_key:
            existing = await self.backend.claim_idempotency_key(spec.idempotency_key, spec.id)
            if existing is not None and existing != spec.id:
                return await self.get_task(existing)
        traceparent = hop("worldpool.submit", None, hop_attributes(spec))
        record = TaskRecord(
            spec=spec, submitted_at=await self._clock.now(), traceparent=traceparent
        )
        created = await self.dispatcher.create(record)
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
        await self.transitions.emit_event(
            Event(kind=EventKind.WORKFLOW_SUBMITTED, workflow_id=spec.id, message=spec.name)
        )
        await self.workflows.advance(spec.id)
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
        await self.pool_view.refresh()
        context = await self.pool_view.context(TaskRecord(spec=spec), await self.backend.now())
        return self.router.decide(context, self.pool_view.snapshot)

    async def explain_task(self, task_id: str) -> RoutingDecision:
        """A task's full routing explanation: the one recorded (a task that waited), or,
        for a task dispatched with a lean record, its routing redone against the pool as
        it is now (``decided_at`` says when)."""
        record = await self.get_task(task_id)
        if record.decision is not None and record.decision.explained:
            return record.decision
        await self.pool_view.refresh()
        context = await self.pool_view.context(record, await self.backend.now())
        return self.router.decide(context, self.pool_view.snapshot)

    async def _explain_now(self, record: TaskRecord) -> RoutingDecision:
        """The full routing explanation of ``record`` against the pool as it is now."""
        if self.pool_view.stale:
            await self.pool_view.refresh()
        context = await self.pool_view.context(record, await self._clock.now())
        return self.router.decide(context, self.pool_view.snapshot)

    async def cancel(self, ident: str) -> bool:
        """Cancel a task or a whole workflow. False if it had already ended."""
        workflow = await self.backend.get_workflow(ident)
        if workflow is not None:
            return await self.workflows.cancel(workflow)
        record = await self.get_task(ident)
        changed = await self.transitions.cancel(record, "cancelled by user")
        if changed and record.spec.workflow_id:
            await self.workflows.advance(record.spec.workflow_id)
        return changed

    async def retry(self, ident: str) -> list[str]:
        """Retry a failed or cancelled task, or a workflow from its failed step. Returns
        what was queued again: the task's id, or the workflow's step names ([] if it had
        not failed or been cancelled)."""
        workflow = await self.backend.get_workflow(ident)
        if workflow is not None:
            return await self.workflows.retry(workflow)
        record = await self.get_task(ident)
        if record.spec.workflow_id:  # a step: through its workflow, so the DAG follows
            parent = await self.backend.get_workflow(record.spec.workflow_id)
            if parent is not None and parent.status.terminal:
                steps = await self.workflows.retry(parent)
                return [record.id] if (record.spec.step or record.id) in steps else []
        return [record.id] if await self.transitions.retry(record) else []

    async def wait_task(self, task_id: str, timeout_s: float = 60.0) -> TaskRecord:
        """Wait until the task ends (TimeoutError after ``timeout_s``)."""
        read_at = time.monotonic()  # a record this replica cached is current: no first read
        async with asyncio.timeout(timeout_s):
            while True:
                cached = self.records.get(task_id)  # a finished record is final:
                if cached is not None and cached.status.terminal:
                    self.records.drop(task_id)  # hand it over (nothing here reads it again)
                    return cached
                # This replica's own writes show in the cache; read the backend at first and
                # then every 0.5 s for what other replicas (or processes) change.
                if cached is None or time.monotonic() - read_at >= 0.5:
                    read_at = time.monotonic()
                    record = await self.get_task(task_id)
                    if record.status.terminal:
                        return record
                await self.records.wait_terminal(task_id, 0.5)

    async def wait_workflow(self, workflow_id: str, timeout_s: float = 60.0) -> WorkflowStatus:
        async with asyncio.timeout(timeout_s):
            while True:
                seen = self.changes.generation
                status = await self.workflow_status(workflow_id)
                if status.status.terminal:
                    return status
                await self.changes.wait(0.5, seen)


def _check_json(value: JSONValue, what: str) -> None:
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None
