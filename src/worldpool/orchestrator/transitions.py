"""Transitions: writing a task record, and everything a written transition implies.

:class:`Transitions` is how every part of the orchestrator changes a task: the
compare-and-set write that keeps the record cache coherent, the transition's events, its
follow-ups (the local slot count, sticky placement, re-queueing, the dead letter,
workflow advancement, the full routing explanation of a task that failed for good), and
the transitions the orchestrator makes itself (an attempt lost with its worker, a cancel).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

import orjson

from worldpool import lifecycle
from worldpool.backends.base import Backend
from worldpool.models import (
    AttemptOutcome,
    Event,
    EventKind,
    JSONValue,
    RoutingDecision,
    TaskRecord,
    TaskStatus,
)
from worldpool.orchestrator.clock import BackendClock
from worldpool.orchestrator.events import task_event, transition_events
from worldpool.orchestrator.pending import PendingQueue
from worldpool.orchestrator.pool import PoolView
from worldpool.orchestrator.records import RecordCache
from worldpool.orchestrator.signals import Changes

log = logging.getLogger("worldpool.orchestrator.core")

ACTIVE = frozenset({TaskStatus.DISPATCHED, TaskStatus.RUNNING})
QUEUED = frozenset({TaskStatus.PENDING, TaskStatus.RETRYING})
# Compare-and-set writes retried on a conflict (a concurrent writer bumped the version)
# before giving up and saying so.
CAS_ATTEMPTS = 5

AdvanceWorkflow = Callable[[str], Awaitable[None]]
# The full routing explanation of a task against the pool as it is now.
Explain = Callable[[TaskRecord], Awaitable[RoutingDecision]]


class Transitions:
    """Task writes and their consequences, shared by dispatch, results, sweep and
    workflows. ``advance_workflow`` is called when a workflow step's task ends;
    ``explain`` (if given) gives the full explanation recorded on a task that fails."""

    def __init__(
        self,
        backend: Backend,
        clock: BackendClock,
        records: RecordCache,
        pending: PendingQueue,
        pool: PoolView,
        changes: Changes,
        rng: random.Random,
        advance_workflow: AdvanceWorkflow,
        explain: Explain | None = None,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._records = records
        self._pending = pending
        self._pool = pool
        self._changes = changes
        self._rng = rng
        self._advance_workflow = advance_workflow
        self._explain = explain

    async def put(self, record: TaskRecord, expect_version: int) -> bool:
        """Compare-and-set one task record, keeping the record cache coherent: every task
        write of the orchestrator goes through here (or updates the cache itself)."""
        if await self._backend.put_task(record, expect_version=expect_version):
            self._records.put(record)
            return True
        self._records.drop(record.id)
        return False

    async def records_of(self, task_ids: list[str]) -> list[TaskRecord | None]:
        """The records, from the cache where it has them, the rest in one backend read."""
        found = [self._records.get(i) for i in task_ids]
        missing = [i for i, r in zip(task_ids, found, strict=True) if r is None]
        if not missing:
            return found
        read = dict(zip(missing, await self._backend.get_tasks(missing), strict=True))
        for record in read.values():
            if record is not None:
                self._records.put(record)
        return [r if r is not None else read[i] for i, r in zip(task_ids, found, strict=True)]

    async def after(
        self, before: TaskRecord, after: TaskRecord, worker: str, at: float | None = None
    ) -> None:
        """Events and follow-ups of a successful write. ``at``: the clock reading of the
        operation that made the transition (None: read it now)."""
        at = await self._clock.now() if at is None else at
        await self._backend.append_events(transition_events(before, after, worker, at))
        await self.follow_up(before, after, worker)
        self._changes.notify()

    async def follow_up(self, before: TaskRecord, after: TaskRecord, worker: str) -> None:
        """What a written transition implies besides its events: the local slot count,
        sticky placement, re-queueing, the dead letter, workflow advancement."""
        status = after.status
        if before.worker_id and before.status in ACTIVE and status not in ACTIVE:
            self._pool.adjust_running(before.worker_id, -1)  # the backend gave the slot back
        if status is TaskStatus.SUCCEEDED and after.spec.affinity:
            self._pool.remember_affinity(after.spec.affinity.key, worker)
        elif status in QUEUED:
            await self._pending.add(after.id, after.spec.priority)
        elif status is TaskStatus.FAILED:
            await self._backend.dead_letter(
                worker, "failed", after.error or "", orjson.dumps({"task_id": after.id})
            )
            await self.explain_failure(after)
        if status.terminal and after.spec.workflow_id:
            await self._advance_workflow(after.spec.workflow_id)

    async def explain_failure(self, failed: TaskRecord) -> None:
        """Record the full routing explanation on a task that failed for good, as a task
        that waits gets its own: every candidate with its verdicts and scores, the
        runner-up, and, when nobody fits, why and the smallest fix, against the pool as it
        is now (``decided_at`` says when). The lean decision it was dispatched with named
        the winner and runner-up only. A decision already explained (the task waited
        until it failed) is kept. Best effort: a failure here is logged, never raised."""
        if self._explain is None:
            return
        record = failed
        try:
            for _ in range(CAS_ATTEMPTS):
                if record.status is not TaskStatus.FAILED or (
                    record.decision is not None and record.decision.explained
                ):
                    return
                decision = await self._explain(record)
                update = record.model_copy(update={"decision": decision})
                if await self.put(update, expect_version=record.version):
                    return
                fresh = await self._backend.get_task(record.id)
                if fresh is None:
                    return
                record = fresh
        except Exception:  # the task has failed either way; its explanation is extra
            log.exception("recording the routing explanation of failed task %s", failed.id)
            return
        log.warning(
            "gave up recording the explanation of failed task %s: %d conflicting writes",
            failed.id,
            CAS_ATTEMPTS,
        )

    async def redo_follow_ups(self, record: TaskRecord) -> None:
        """A report that changes nothing is a zombie's, or one replayed after an orchestrator
        died between writing the record and acknowledging the report; then the follow-ups of
        that write (advancing the workflow, re-queueing a retry) may be lost. Both are
        idempotent, so redo them."""
        if record.status.terminal and record.spec.workflow_id:
            await self._advance_workflow(record.spec.workflow_id)
        elif record.status in QUEUED:
            await self._pending.add(record.id, record.spec.priority)

    async def lose_attempt(
        self,
        record: TaskRecord,
        reason: str,
        outcome: AttemptOutcome = AttemptOutcome.WORKER_LOST,
    ) -> bool:
        """End the current attempt as lost to the pool (re-routed at once, within
        ``MAX_FAILOVERS``). False if another writer changed the record first."""
        now = await self._backend.now()
        nxt = lifecycle.failed_attempt(
            record, reason, now, outcome=outcome, retryable=True, rng=self._rng
        )
        if not await self.put(nxt, expect_version=record.version):
            return False
        if record.worker_id:
            await self._backend.release(record.worker_id, record.id)
        await self.after(record, nxt, record.worker_id or "")
        return True

    async def cancel(self, record: TaskRecord, reason: str) -> bool:
        """Cancel a task. False if it had ended already (or could not be written, which
        is logged with its id)."""
        for _ in range(CAS_ATTEMPTS):
            if record.status.terminal:
                return False
            nxt = lifecycle.cancelled(record, await self._backend.now(), reason)
            if await self.put(nxt, expect_version=record.version):
                await self._pending.remove(record.id)
                if record.worker_id and record.status in ACTIVE:
                    await self._backend.release(record.worker_id, record.id)
                charged = lifecycle.attempt_cost(nxt) if record.status in ACTIVE else {}
                await self.emit(EventKind.TASK_CANCELLED, nxt, message=reason, data=charged)
                self._changes.notify()
                return True
            fresh = await self._backend.get_task(record.id)
            if fresh is None:
                return False
            record = fresh
        log.warning(
            "gave up cancelling task %s: %d writes in a row conflicted with other writers",
            record.id,
            CAS_ATTEMPTS,
        )
        return False

    async def retry(self, record: TaskRecord) -> bool:
        """Queue a failed or cancelled task again by hand (fresh retry budget). False if it
        is not failed or cancelled (or could not be written, which is logged)."""
        for _ in range(CAS_ATTEMPTS):
            if record.status not in lifecycle.RETRYABLE_BY_HAND:
                return False
            nxt = lifecycle.retried(record)
            if await self.put(nxt, expect_version=record.version):
                await self.emit(EventKind.TASK_RETRYING, nxt, message="retry requested")
                await self._pending.add(nxt.id, nxt.spec.priority)
                self._changes.notify()
                return True
            fresh = await self._backend.get_task(record.id)
            if fresh is None:
                return False
            record = fresh
        log.warning("gave up retrying task %s: %d conflicting writes", record.id, CAS_ATTEMPTS)
        return False

    async def emit(
        self,
        kind: EventKind,
        record: TaskRecord,
        *,
        worker_id: str | None = None,
        message: str = "",
        data: dict[str, JSONValue] | None = None,
        at: float | None = None,
    ) -> None:
        at = await self._backend.now() if at is None else at
        await self._backend.append_event(
            task_event(kind, record, at, worker_id=worker_id, message=message, data=data)
        )

    async def emit_event(self, event: Event, at: float | None = None) -> None:
        """Append an event stamped ``at`` (the backend clock reading the caller already
        has, saving a round trip), or the backend's clock now."""
        event.at = await self._backend.now() if at is None else at
        await self._backend.append_event(event)
