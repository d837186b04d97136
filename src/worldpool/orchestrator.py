"""The orchestrator: owns task and workflow state, routes, delivers, retries, fails over.

It is the same code in embedded mode (memory backend, workers in-process) and distributed
mode (Redis, workers elsewhere). Three loops run while it is started:

* **dispatch**: routes pending tasks through the Router and reserves a slot on the winner
  (compare-and-set on the record first, so two replicas never dispatch one task twice);
* **results**: applies workers' reports with fencing, retries with backoff, advances
  workflows;
* **sweep** (one replica at a time, under a lease): marks silent workers offline, reclaims
  and re-routes their tasks, enforces timeouts.

Lifecycle policy (what a failure means) lives in :mod:`worldpool.lifecycle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterable

import orjson

from worldpool import geo, lifecycle
from worldpool import workflow as wfl
from worldpool.artifacts import ArtifactStore
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.envelope import encode_envelope
from worldpool.errors import NotFoundError, ReservationError, ValidationError
from worldpool.models import (
    Envelope,
    Event,
    EventKind,
    JSONValue,
    RoutingDecision,
    TaskRecord,
    TaskResult,
    TaskSpec,
    TaskStatus,
    Worker,
    WorkerStatus,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowState,
    WorkflowStatus,
)
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy
from worldpool.tracing import child_traceparent, new_traceparent

log = logging.getLogger("worldpool.orchestrator")

SWEEP_LEASE = "sweep"
ACTIVE = frozenset({TaskStatus.DISPATCHED, TaskStatus.RUNNING})
# The pool snapshot is kept current locally (slots taken on dispatch, given back on results)
# and re-read from the backend at most this often, or at once after a failed reservation.
POOL_REFRESH_S = 0.25
# Pending tasks read per dispatch pass: a few per free slot, so a long queue is not re-read
# (and re-routed) in full on every pass.
PENDING_PER_SLOT = 4
MIN_PENDING_READ = 100


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
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.router = router or Router(RoutingPolicy.from_settings(self.settings))
        self.artifacts = artifacts or ArtifactStore(backend, self.settings)
        self.name = name
        self.pool_snapshot = PoolSnapshot()
        self._rng = random.Random(seed)
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._loops: list[asyncio.Task[None]] = []
        self._affinity: dict[str, str] = {}  # affinity key -> worker that ran it last
        self._stopping = False
        self._generation = 0  # bumped on every change, so waiters never miss a wake-up
        self._pool_read_at = 0.0  # monotonic time of the last pool refresh (0: refresh now)

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
            await self.backend.release_lease(SWEEP_LEASE, self.name)

    async def __aenter__(self) -> Orchestrator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def wake(self) -> None:
        """Ask the dispatcher to look at the pending queue now (pool or queue changed)."""
        self._wake.set()

    # ------------------------------------------------------------------ public API
    async def submit(self, spec: TaskSpec) -> TaskRecord:
        """Queue a task. With an idempotency key, a second submit returns the first task."""
        _check_json(spec.payload, "payload")
        if spec.idempotency_key:
            existing = await self.backend.claim_idempotency_key(spec.idempotency_key, spec.id)
            if existing is not None and existing != spec.id:
                return await self.get_task(existing)
        record = TaskRecord(spec=spec, submitted_at=await self.backend.now())
        record.meta["traceparent"] = new_traceparent()
        if not await self.backend.put_task(record, expect_version=0):
            return await self.get_task(spec.id)  # already submitted (same deterministic id)
        await self.backend.add_pending(spec.id, spec.priority)
        await self._emit(EventKind.TASK_SUBMITTED, record, message=f"handler {spec.handler}",
                         data={"spec": spec.model_dump(mode="json")},  # replayable
                         at=record.submitted_at)
        await self._notify()
        return record

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
        await self._emit_event(Event(kind=EventKind.WORKFLOW_SUBMITTED, workflow_id=spec.id,
                                     message=spec.name))
        await self._advance_workflow(spec.id)
        return record

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
        async with asyncio.timeout(timeout_s):
            while True:
                seen = self._generation
                record = await self.get_task(task_id)
                if record.status.terminal:
                    return record
                await self._wait_change(0.5, seen)

    async def wait_workflow(self, workflow_id: str, timeout_s: float = 60.0) -> WorkflowStatus:
        async with asyncio.timeout(timeout_s):
            while True:
                seen = self._generation
                status = await self.workflow_status(workflow_id)
                if status.status.terminal:
                    return status
                await self._wait_change(0.5, seen)

    async def _wait_change(self, timeout_s: float, seen: int | None = None) -> None:
        """Wait for a change after generation ``seen`` (at once if one already happened
        while the caller was reading; None: the next change)."""
        async with self._changed:
            if seen is not None and self._generation != seen:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def _notify(self) -> None:
        self._generation += 1
        self._wake.set()
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ dispatch
    async def _dispatch_loop(self) -> None:
        idle_s = min(0.5, self.settings.heartbeat_s / 2)
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_s)
            self._wake.clear()
            try:
                await self.dispatch_once()
            except Exception:  # never let one bad record stop dispatching
                log.exception("dispatch pass failed; retrying")
                await asyncio.sleep(idle_s)

    async def dispatch_once(self) -> int:
        """Route pending tasks that can go now. Returns how many were dispatched.

        Decisions for the batch are taken against one pool snapshot (slots taken locally
        as they are handed out, re-read every POOL_REFRESH_S); the writes for the winners
        then go out concurrently, each still compare-and-set on the record before its
        reservation, so two replicas never dispatch one task twice."""
        if time.monotonic() - self._pool_read_at > POOL_REFRESH_S:
            await self._refresh_pool()
        free = self._free_slots()
        ids = await self.backend.list_pending(max(MIN_PENDING_READ, PENDING_PER_SLOT * free))
        if not ids:
            return 0
        now = await self.backend.now()
        plans: list[tuple[TaskRecord, Worker, RoutingDecision]] = []
        stale: list[str] = []
        for record in await self.backend.get_tasks(ids):
            if record is None:
                continue
            if record.status is TaskStatus.DISPATCHED:
                await self._check_interrupted_dispatch(record, now)
                continue
            if record.status.terminal or record.status in ACTIVE:
                stale.append(record.id)
                continue
            if record.not_before > now:
                continue
            if free <= 0:
                break  # every slot is taken: the rest wait for a slot to come back
            decision = self.router.decide(await self._context(record, now), self.pool_snapshot)
            if decision.winner is None:
                await self._mark_unschedulable(record, decision, now)
                continue
            worker = self.pool_snapshot.workers[self.pool_snapshot.row_of(decision.winner)]
            self._adjust_running(worker.id, +1)  # taken now, so the next decision sees it
            free -= 1
            plans.append((record, worker, decision))
        await asyncio.gather(*(self.backend.remove_pending(i) for i in stale))
        sent = await asyncio.gather(*(self._dispatch(r, w, d, now) for r, w, d in plans))
        if any(sent):
            await self._notify()
        return sum(sent)

    async def _dispatch(self, record: TaskRecord, worker: Worker, decision: RoutingDecision,
                        now: float) -> bool:
        nxt = lifecycle.dispatched(record, worker.id, worker.profile.location.region, now)
        nxt.decision = decision
        if not await self.backend.put_task(nxt, expect_version=record.version):
            self._adjust_running(worker.id, -1)
            return False  # another replica (or a cancel) got there first
        envelope = self._envelope(nxt)
        try:
            await self.backend.reserve_and_send(worker.id, nxt.id, envelope)
        except ReservationError as exc:
            # Lost the race for the slot: put the task back as it was (attempt unchanged).
            self._adjust_running(worker.id, -1)
            self._pool_read_at = 0.0  # the snapshot was wrong about this worker: re-read
            back = record.model_copy(update={"pending_reason": str(exc)})
            back.version = nxt.version
            await self.backend.put_task(back, expect_version=nxt.version)
            return False
        await self.backend.remove_pending(nxt.id)
        failover = bool(record.attempts) and (record.attempts[-1].error or "").startswith(
            lifecycle.LOST)
        await self._emit(EventKind.TASK_DISPATCHED, nxt, worker_id=worker.id,
                         message=_why(decision), at=now,
                         data={"region": worker.profile.location.region, "failover": failover,
                               "runner_up": decision.runner_up})
        return True

    async def _check_interrupted_dispatch(self, record: TaskRecord, now: float) -> None:
        """A DISPATCHED task still in the pending queue: either another replica is between
        its record write and its ``remove_pending`` (milliseconds), or the orchestrator that
        wrote the record died before sending it (or after sending, before removing it). Past
        4 x ``offline_after_s`` with no report applied, treat it as never sent: move it on as
        a lost attempt (if the envelope did go out after all, that attempt's reports are
        fenced and its worker is told to drop it: at least once, never lost)."""
        dispatched_at = record.attempts[-1].dispatched_at if record.attempts else 0.0
        if now - dispatched_at > 4 * self.settings.offline_after_s:
            log.warning("task %s was dispatched but never sent (orchestrator restart?); "
                        "re-routing it", record.id)
            await self._lose_attempt(record, "dispatch interrupted before the send")

    def _free_slots(self) -> int:
        return sum(max(0, w.profile.max_concurrency - w.state.running)
                   for w in self.pool_snapshot.workers
                   if w.state.status is WorkerStatus.ONLINE)

    def _adjust_running(self, worker_id: str, delta: int) -> None:
        """Keep the local snapshot's slot count honest between refreshes."""
        if worker_id not in self.pool_snapshot:
            return
        worker = self.pool_snapshot.workers[self.pool_snapshot.row_of(worker_id)]
        worker.state.running = max(0, worker.state.running + delta)
        self.pool_snapshot.update_state(worker.state)

    def _envelope(self, record: TaskRecord) -> bytes:
        spec = record.spec
        deadline = None
        if spec.execution_timeout_s is not None:
            deadline = time.time() + spec.execution_timeout_s
        envelope = Envelope(
            task_id=spec.id,
            attempt=record.attempt,
            handler=spec.handler,
            payload=spec.payload,
            inputs=spec.inputs,
            deadline=deadline,
            # One trace per task: each attempt is a child span of the submit span.
            traceparent=child_traceparent(record.meta.get("traceparent")),
            workflow_id=spec.workflow_id,
            step=spec.step,
            upstream=record.meta.get("upstream", {}),
            heartbeat_timeout_s=spec.heartbeat_timeout_s,
        )
        return encode_envelope(envelope, self.settings.secret)

    async def _mark_unschedulable(self, record: TaskRecord, decision: RoutingDecision,
                                  now: float | None = None) -> None:
        reason = decision.suggestion or "; ".join(decision.reasons) or "no worker available"
        if decision.waiting_for_affinity:
            reason = "; ".join(decision.reasons) or "waiting for its sticky worker"
        if record.pending_reason == reason:
            return
        update = record.model_copy(update={"pending_reason": reason, "decision": decision})
        if await self.backend.put_task(update, expect_version=record.version):
            if not decision.waiting_for_affinity:
                await self._emit(EventKind.TASK_UNSCHEDULABLE, update, message=reason, at=now)
            await self._notify()

    async def _context(self, record: TaskRecord, now: float | None = None) -> RoutingContext:
        spec = record.spec
        now = await self.backend.now() if now is None else now
        avoid: frozenset[str] = frozenset()
        if spec.retry.prefer_different_worker:
            avoid = frozenset(a.worker_id for a in record.attempts if a.status is TaskStatus.FAILED)
        return RoutingContext(
            task=spec,
            now=now,
            user_location=geo.try_location(spec.user_location) if spec.user_location else None,
            affinity_worker=await self._affinity_worker(spec),
            waited_s=max(0.0, now - record.submitted_at),
            avoid_workers=avoid,
            heartbeat_timeout_s=self.settings.offline_after_s,
        )

    async def _affinity_worker(self, spec: TaskSpec) -> str | None:
        if spec.affinity is None:
            return None
        key = spec.affinity.key
        if key in self._affinity:
            return self._affinity[key]
        wf_id, _, step = key.rpartition(":")
        if wf_id and step:  # workflow sticky key "{workflow}:{step}" -> who ran that step
            other = await self.backend.get_task(f"{wf_id}.{step}")
            if other is not None and other.status is TaskStatus.SUCCEEDED:
                return other.attempts[-1].worker_id if other.attempts else None
        return None

    async def _refresh_pool(self) -> None:
        self._pool_read_at = time.monotonic()
        workers = await self.backend.list_workers()
        seen = set()
        for worker in workers:
            seen.add(worker.id)
            self.pool_snapshot.upsert(worker)
        for worker in list(self.pool_snapshot.workers):
            if worker.id not in seen:
                self.pool_snapshot.remove(worker.id)

    # ------------------------------------------------------------------ results
    async def _results_loop(self) -> None:
        while not self._stopping:
            try:
                messages = await self.backend.receive_results(self.name, 200, block_s=1.0)
                if messages:
                    await self.apply_results([m.result for m in messages])
                    await self.backend.ack_results([m.id for m in messages])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying results failed; retrying")
                await asyncio.sleep(0.5)

    async def apply_results(self, results: list[TaskResult]) -> None:
        """Apply a batch of worker reports: one read of the records and of the clock for the
        batch, the reports of one task folded into one write (STARTED + SUCCEEDED of a fast
        task is one put, still two events), the tasks written concurrently."""
        by_task: dict[str, list[TaskResult]] = {}
        for result in results:
            by_task.setdefault(result.task_id, []).append(result)
        ids = list(by_task)
        records, now = await asyncio.gather(self.backend.get_tasks(ids), self.backend.now())
        await asyncio.gather(*(self._apply_reports(record, by_task[task_id], now)
                               for task_id, record in zip(ids, records, strict=True)))

    async def _apply_reports(self, record: TaskRecord | None, results: list[TaskResult],
                             now: float) -> None:
        if record is None:
            return
        steps: list[tuple[TaskRecord, TaskRecord, str]] = []
        current = record
        for result in results:
            nxt = lifecycle.apply_result(current, result, now, self._rng)
            if nxt is None:
                log.info("ignored stale report for %s attempt %s from %s",
                         result.task_id, result.attempt, result.worker_id)
                continue
            steps.append((current, nxt, result.worker_id))
            current = nxt
        if not steps:
            await self._redo_follow_ups(record)
            return
        if not await self.backend.put_task(current, expect_version=record.version):
            for result in results:  # a concurrent writer got there first: one at a time
                await self.apply_result(result)
            return
        for before, after, worker in steps:
            await self._after_transition(before, after, worker, at=now)

    async def apply_result(self, result: TaskResult) -> None:
        """Apply one worker report (fenced: a stale attempt changes nothing)."""
        for _ in range(5):  # CAS retry: a concurrent writer may have bumped the version
            record = await self.backend.get_task(result.task_id)
            if record is None:
                return
            now = await self.backend.now()
            nxt = lifecycle.apply_result(record, result, now, self._rng)
            if nxt is None:
                log.info("ignored stale report for %s attempt %s from %s",
                         result.task_id, result.attempt, result.worker_id)
                await self._redo_follow_ups(record)
                return
            if await self.backend.put_task(nxt, expect_version=record.version):
                await self._after_transition(record, nxt, result.worker_id, at=now)
                return

    async def _redo_follow_ups(self, record: TaskRecord) -> None:
        """A report that changes nothing is a zombie's, or one replayed after an orchestrator
        died between writing the record and acknowledging the report; then the follow-ups of
        that write (advancing the workflow, re-queueing a retry) may be lost. Both are
        idempotent, so redo them."""
        if record.status.terminal and record.spec.workflow_id:
            await self._advance_workflow(record.spec.workflow_id)
        elif record.status in (TaskStatus.PENDING, TaskStatus.RETRYING):
            await self.backend.add_pending(record.id, record.spec.priority)

    async def _after_transition(self, before: TaskRecord, after: TaskRecord, worker: str,
                                at: float | None = None) -> None:
        """Events, queueing and workflow advancement after a successful write. ``at``: the
        clock reading of the operation that made the transition (None: read it now)."""
        status = after.status
        if before.worker_id and before.status in ACTIVE and status not in ACTIVE:
            self._adjust_running(before.worker_id, -1)  # the backend gave the slot back
        if status is TaskStatus.RUNNING and before.status is not TaskStatus.RUNNING:
            await self._emit(EventKind.TASK_STARTED, after, worker_id=worker, at=at)
        elif status is TaskStatus.RUNNING:
            await self._emit(EventKind.TASK_PROGRESS, after, worker_id=worker,
                             data={"progress": after.progress}, at=at)
        elif status is TaskStatus.SUCCEEDED:
            if after.spec.affinity:
                self._affinity[after.spec.affinity.key] = worker
            await self._emit(EventKind.TASK_SUCCEEDED, after, worker_id=worker,
                             data=_usage(after), at=at)
        elif status in (TaskStatus.PENDING, TaskStatus.RETRYING):
            await self.backend.add_pending(after.id, after.spec.priority)
            kind = EventKind.TASK_RETRYING if status is TaskStatus.RETRYING else \
                EventKind.TASK_FAILOVER
            await self._emit(kind, after, worker_id=worker, message=after.error or "",
                             data={"not_before": after.not_before}, at=at)
        elif status is TaskStatus.FAILED:
            await self._emit(EventKind.TASK_FAILED, after, worker_id=worker,
                             message=after.error or "", at=at)
            await self.backend.dead_letter(worker, "failed", after.error or "",
                                           orjson.dumps({"task_id": after.id}))
            await self._emit(EventKind.TASK_DEAD_LETTERED, after, message=after.error or "",
                             at=at)
        if status.terminal and after.spec.workflow_id:
            await self._advance_workflow(after.spec.workflow_id)
        await self._notify()

    # ------------------------------------------------------------------ workflows
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
                        await self._submit_step(wfl.step_task_spec(spec, step, parents),
                                                wfl.upstream_values(spec, step, parents))
                    continue
                parents = {p: tasks[p] for p in _parents(spec, step)}
                new_specs.append((step, wfl.step_task_spec(spec, step, parents),
                                  wfl.upstream_values(spec, step, parents)))
            state = wfl.workflow_state(spec, statuses)
            nxt = record.model_copy(deep=True)
            for step, task_spec, _ in new_specs:
                nxt.task_ids[step] = task_spec.id
            if new_specs and state is WorkflowState.PENDING:
                state = WorkflowState.IN_PROGRESS
            nxt.status = state
            if state.terminal:
                nxt.ended_at = await self.backend.now()
                nxt.error = next((t.error for t in tasks.values()
                                  if t.status is TaskStatus.FAILED), None)
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
            await self._advance_workflow(workflow.id)

    async def _submit_step(self, spec: TaskSpec, upstream: dict[str, JSONValue]) -> None:
        record = TaskRecord(spec=spec, submitted_at=await self.backend.now())
        record.meta["upstream"] = upstream
        record.meta["traceparent"] = new_traceparent()
        if await self.backend.put_task(record, expect_version=0):
            await self.backend.add_pending(spec.id, spec.priority)
            await self._emit(EventKind.TASK_SUBMITTED, record, message=f"handler {spec.handler}",
                         data={"spec": spec.model_dump(mode="json")},  # replayable
                         at=record.submitted_at)
            self._wake.set()

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

    async def _cancel_task(self, record: TaskRecord, reason: str) -> bool:
        for _ in range(5):
            if record.status.terminal:
                return False
            nxt = lifecycle.cancelled(record, await self.backend.now(), reason)
            if await self.backend.put_task(nxt, expect_version=record.version):
                await self.backend.remove_pending(record.id)
                if record.worker_id and record.status in ACTIVE:
                    await self.backend.release(record.worker_id, record.id)
                await self._emit(EventKind.TASK_CANCELLED, nxt, message=reason)
                await self._notify()
                return True
            record = await self.get_task(record.id)
        return False

    # ------------------------------------------------------------------ liveness and timeouts
    async def _sweep_loop(self) -> None:
        while not self._stopping:
            try:
                if await self.backend.acquire_lease(SWEEP_LEASE, self.name,
                                                    self.settings.offline_after_s * 2):
                    await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(min(0.5, self.settings.heartbeat_s / 2))

    async def sweep_once(self) -> None:
        """Fail over silent workers' tasks and enforce timeouts."""
        now = await self.backend.now()
        workers = await self.backend.list_workers()
        dead = [
            w for w in workers
            if w.state.status is not WorkerStatus.OFFLINE
            and now - w.state.last_heartbeat > self.settings.offline_after_s
        ]
        for worker in dead:
            await self.fail_over(worker.id, f"worker {worker.id} missed "
                                 f"{self.settings.offline_after_heartbeats} heartbeats")
        await self._enforce_timeouts(now)

    async def fail_over(self, worker_id: str, reason: str) -> int:
        """Declare a worker dead and re-route everything it held. Returns tasks moved."""
        if await self.backend.mark_offline(worker_id):
            await self._emit_event(Event(kind=EventKind.WORKER_OFFLINE, worker_id=worker_id,
                                         message=reason))
        await self.backend.reclaim(worker_id)
        moved = 0
        for record in await self.backend.list_active_tasks():
            if (record.worker_id == worker_id and record.status in ACTIVE
                    and await self._lose_attempt(record, reason)):
                moved += 1
        await self._notify()
        return moved

    async def _lose_attempt(self, record: TaskRecord, reason: str) -> bool:
        now = await self.backend.now()
        nxt = lifecycle.failed_attempt(record, reason, now, retryable=True, lost=True,
                                       rng=self._rng)
        if not await self.backend.put_task(nxt, expect_version=record.version):
            return False
        if record.worker_id:
            await self.backend.release(record.worker_id, record.id)
        await self._after_transition(record, nxt, record.worker_id or "")
        return True

    async def _enforce_timeouts(self, now: float) -> None:
        for record in await self.backend.list_active_tasks():
            spec = record.spec
            if record.status is TaskStatus.PENDING and spec.schedule_to_start_timeout_s:
                if now - record.submitted_at > spec.schedule_to_start_timeout_s:
                    await self._time_out(record, "schedule-to-start",
                                         spec.schedule_to_start_timeout_s, final=True)
            elif record.status in ACTIVE and record.attempts:
                attempt = record.attempts[-1]
                if (spec.execution_timeout_s and attempt.started_at
                        and now - attempt.started_at > spec.execution_timeout_s):
                    await self._time_out(record, "execution", spec.execution_timeout_s)
                elif (spec.heartbeat_timeout_s and record.status is TaskStatus.RUNNING
                        and now - float(record.meta.get("last_progress_at") or now)
                        > spec.heartbeat_timeout_s):
                    await self._time_out(record, "heartbeat", spec.heartbeat_timeout_s)

    async def _time_out(self, record: TaskRecord, limit: str, seconds: float,
                        final: bool = False) -> None:
        now = await self.backend.now()
        error = f"{limit} timeout of {seconds:g}s passed"
        if final:
            nxt = lifecycle.failed_attempt(record, error, now, retryable=False)
        else:
            nxt = lifecycle.failed_attempt(record, error, now, retryable=True, rng=self._rng)
        if await self.backend.put_task(nxt, expect_version=record.version):
            if record.worker_id and record.status in ACTIVE:
                await self.backend.release(record.worker_id, record.id)
            await self._emit(EventKind.TASK_TIMED_OUT, nxt, worker_id=record.worker_id,
                             message=error)
            if final:
                await self.backend.remove_pending(record.id)
            await self._after_transition(record, nxt, record.worker_id or "")

    # ------------------------------------------------------------------ events
    async def _emit(self, kind: EventKind, record: TaskRecord, *, worker_id: str | None = None,
                    message: str = "", data: dict[str, JSONValue] | None = None,
                    at: float | None = None) -> None:
        await self._emit_event(Event(
            kind=kind, task_id=record.id, workflow_id=record.spec.workflow_id,
            step=record.spec.step, worker_id=worker_id or record.worker_id,
            attempt=record.attempt or None, message=message,
            data={"handler": record.spec.handler, **(data or {})},
        ), at)

    async def _emit_event(self, event: Event, at: float | None = None) -> None:
        """Append an event stamped ``at`` (the backend clock reading the caller already
        has, saving a round trip), or the backend's clock now."""
        event.at = await self.backend.now() if at is None else at
        await self.backend.append_event(event)


def _check_json(value: JSONValue, what: str) -> None:
    try:
        orjson.dumps(value)
    except TypeError as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None


def _parents(spec: WorkflowSpec, step: str) -> list[str]:
    return next(s.after for s in spec.steps if s.name == step)


def _usage(record: TaskRecord) -> dict[str, JSONValue]:
    return {"tokens_used": record.tokens_used, "cost_usd": record.cost_usd,
            "handler": record.spec.handler}


def _why(decision: RoutingDecision) -> str:
    """One line: why the winner won (top scorers, margin over the runner-up)."""
    if not decision.candidates:
        return ""
    best = decision.candidates[0]
    top = sorted(best.scores.items(), key=lambda kv: -kv[1] * decision.weights.get(kv[0], 0))[:3]
    parts = ", ".join(f"{name} {score:.2f}" for name, score in top)
    line = f"score {best.total:.3f} ({parts})"
    if len(decision.candidates) > 1 and decision.candidates[1].feasible:
        second = decision.candidates[1]
        line += f"; beat {second.worker_id} by {best.total - second.total:.3f}"
    return line
