"""Dispatch: route pending tasks and send them, a batch per pass.

Decisions for a pass are taken against one pool snapshot, kept honest locally between
re-reads; the writes for the whole pass go out in one :meth:`Backend.dispatch_many` call,
atomic per task (compare-and-set on the record, slot reservation, send, pending removal,
event), so two replicas never dispatch one task twice and a lost reservation leaves
nothing to undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from worldpool import geo, lifecycle
from worldpool.backends.base import Dispatch, NewTask
from worldpool.envelope import encode_envelope
from worldpool.errors import ReservationError
from worldpool.models import (
    Envelope,
    EventKind,
    RoutingDecision,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    Worker,
    WorkerStatus,
)
from worldpool.orchestrator.base import ACTIVE, OrchestratorBase
from worldpool.routing import RoutingContext
from worldpool.tracing import child_traceparent
from worldpool.unchecked import construct

log = logging.getLogger("worldpool.orchestrator.core")

# The pool snapshot is kept current locally (slots taken on dispatch, given back on results)
# and re-read from the backend at most this often, or at once after a failed reservation.
POOL_REFRESH_S = 0.25
# Pending tasks read per dispatch pass: a few per free slot, so a long queue is not re-read
# (and re-routed) in full on every pass.
PENDING_PER_SLOT = 4
MIN_PENDING_READ = 100
QUEUED = frozenset({TaskStatus.PENDING, TaskStatus.RETRYING})
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields) - {"signature"}


class Dispatcher(OrchestratorBase):
    """The dispatch loop and its helpers."""

    def _idle_s(self) -> float:
        """The longest the dispatcher sleeps, and the longest it goes without reading the
        pending queue."""
        return min(0.5, self.settings.heartbeat_s / 2)

    async def _dispatch_loop(self) -> None:
        idle_s = self._idle_s()
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
        as they are handed out, re-read every POOL_REFRESH_S); then one
        :meth:`Backend.dispatch_many` call (one round trip on Redis) compare-and-sets each
        record, reserves its slot, sends it and appends its event, atomically per task, so
        two replicas never dispatch one task twice."""
        if time.monotonic() - self._pool_read_at > POOL_REFRESH_S:
            await self._refresh_pool()
        free = self._free_slots()
        limit = max(MIN_PENDING_READ, PENDING_PER_SLOT * free)
        self._queue_read_at = time.monotonic()
        self._queue_empty = True  # a submit from here on is either in the read or after it
        ids = await self.backend.list_pending(limit)
        self._backlog = len(ids) >= limit  # set again below for each task left queued
        if not ids:
            return 0
        now = await self._now()
        plans: list[tuple[TaskRecord, Dispatch]] = []
        stale: list[str] = []
        records = await self._records_of(ids)
        odd = [r.id for r in records if r is not None and r.status not in QUEUED]
        if odd:  # queued, yet the cached record says otherwise: another writer moved it
            for task_id in odd:
                self._records.drop(task_id)
            records = await self._records_of(ids)
        for record in records:
            if record is None:
                continue
            if record.status in QUEUED:
                self._backlog = True  # until it is sent below
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
            plans.append((record, self._plan(record, worker, decision, now)))
        await asyncio.gather(*(self.backend.remove_pending(i) for i in stale))
        for _, item in plans:
            # Cached as it will be once written (a successful write makes it version + 1):
            # the worker's report can be applied before this coroutine resumes.
            item.record.version = item.expect_version + 1
            self._records.put(item.record)
        outcomes = await self.backend.dispatch_many([item for _, item in plans])
        sent = 0
        for (record, item), outcome in zip(plans, outcomes, strict=True):
            if outcome.sent:
                sent += 1
                continue
            self._adjust_running(item.worker_id, -1)
            self._records.drop(record.id)
            if outcome.reason:  # lost the race for the slot; nothing was written
                self._pool_read_at = 0.0  # the snapshot was wrong about this worker
                reason = str(ReservationError(item.worker_id, outcome.reason))
                back = record.model_copy(update={"pending_reason": reason})
                await self._put_task(back, expect_version=record.version)
            # conflict: another replica (or a cancel) got there first
        self._backlog = self._backlog and sent < len(ids)
        if self._backlog:  # something is left queued: submits queue behind it
            self._queue_empty = False
        if sent:  # another pass at once only if the queue was longer than what was read
            await self._notify(wake_dispatcher=len(ids) >= limit)
        return sent

    async def _create(self, record: TaskRecord) -> TaskRecord | None:
        """Store a new task (None if its id is taken): sent at once when it may be (see
        :meth:`_route_at_submit`), queued for a dispatch pass otherwise. Concurrent submits
        are coalesced into one backend call."""
        event = self._event(
            EventKind.TASK_SUBMITTED,
            record,
            record.submitted_at,
            message=f"handler {record.spec.handler}",
            data={"spec": record.spec.model_dump(mode="json")},
        )  # replayable
        routed = await self._route_at_submit(record)
        if routed is not None:  # cached as it will be once written (see dispatch_once)
            routed.record.version = 2
            self._records.put(routed.record)
        try:
            outcome = await self._creates(NewTask(record, event, routed))
        except BaseException:
            if routed is not None:  # sent or not, unknown: assume nothing
                self._unroute(routed, stale_pool=True)
            raise
        if routed is not None and not outcome.sent:
            self._unroute(routed, stale_pool=bool(outcome.reason))
        if outcome.conflict:
            return None
        if routed is not None and outcome.sent:
            await self._notify(wake_dispatcher=False)
            return routed.record
        self._backlog = True
        self._queue_empty = False
        self._records.put(record)
        await self._notify()
        return record

    def _unroute(self, routed: Dispatch, stale_pool: bool) -> None:
        """A submit's send did not happen: the slot taken locally and the record cached as
        sent are not so. ``stale_pool``: the snapshot was wrong about the worker."""
        self._adjust_running(routed.worker_id, -1)
        self._records.drop(routed.record.id)
        if stale_pool:
            self._pool_read_at = 0.0

    async def _route_at_submit(self, record: TaskRecord) -> Dispatch | None:
        """Route a new task in its submit call, so the submit also sends it (one round
        trip, no dispatch pass), when that cannot pass anything by: the pending queue is
        known to be empty (a recent pass read it and left nothing, and nothing was queued
        since) and a worker can take the task now. Otherwise None: it is queued.

        "Recent" bounds what another process may have queued unseen (it also calls
        ``wake()`` through ``worldpool serve``): the dispatcher reads the queue at least
        every idle interval, so a submit here passes such a task by for at most two."""
        if not self._queue_empty or time.monotonic() - self._queue_read_at >= 2 * self._idle_s():
            return None
        now = await self._now()
        if record.not_before > now:
            return None
        if time.monotonic() - self._pool_read_at > POOL_REFRESH_S:
            await self._refresh_pool()
        try:
            decision = self.router.decide(await self._context(record, now), self.pool_snapshot)
        except Exception:  # a routing plugin's bug must not lose the submit: queue it
            log.exception("routing task %s at submit failed; queueing it", record.id)
            decision = None
        if decision is None or decision.winner is None:  # queued (the dispatcher says why),
            self._queue_empty = False  # and later submits queue behind it
            return None
        worker = self.pool_snapshot.workers[self.pool_snapshot.row_of(decision.winner)]
        self._adjust_running(worker.id, +1)
        # Sent right after its creation, which makes the stored version 1.
        return self._plan(record, worker, decision, now, expect_version=1)

    def _plan(
        self,
        record: TaskRecord,
        worker: Worker,
        decision: RoutingDecision,
        now: float,
        expect_version: int | None = None,
    ) -> Dispatch:
        """The dispatch of ``record`` to ``worker``, compare-and-set on ``expect_version``
        (default: the record's own version)."""
        nxt = lifecycle.dispatched(record, worker.id, worker.profile.location.region, now)
        nxt.decision = decision
        failover = bool(record.attempts) and (record.attempts[-1].error or "").startswith(
            lifecycle.LOST
        )
        event = self._event(
            EventKind.TASK_DISPATCHED,
            nxt,
            now,
            worker_id=worker.id,
            message=_why(decision),
            data={
                "region": worker.profile.location.region,
                "failover": failover,
                "runner_up": decision.runner_up,
            },
        )
        expect = record.version if expect_version is None else expect_version
        return Dispatch(
            record=nxt,
            expect_version=expect,
            worker_id=worker.id,
            envelope=self._envelope(nxt),
            event=event,
        )

    async def _check_interrupted_dispatch(self, record: TaskRecord, now: float) -> None:
        """A DISPATCHED task still in the pending queue: either another replica is between
        its record write and its ``remove_pending`` (milliseconds), or the orchestrator that
        wrote the record died before sending it (or after sending, before removing it). Past
        4 x ``offline_after_s`` with no report applied, treat it as never sent: move it on as
        a lost attempt (if the envelope did go out after all, that attempt's reports are
        fenced and its worker is told to drop it: at least once, never lost)."""
        dispatched_at = record.attempts[-1].dispatched_at if record.attempts else 0.0
        if now - dispatched_at > 4 * self.settings.offline_after_s:
            log.warning(
                "task %s was dispatched but never sent (orchestrator restart?); re-routing it",
                record.id,
            )
            await self._lose_attempt(record, "dispatch interrupted before the send")

    def _free_slots(self) -> int:
        return sum(
            max(0, w.profile.max_concurrency - w.state.running)
            for w in self.pool_snapshot.workers
            if w.state.status is WorkerStatus.ONLINE
        )

    def _envelope(self, record: TaskRecord) -> bytes:
        spec = record.spec
        deadline = None
        if spec.execution_timeout_s is not None:
            deadline = time.time() + spec.execution_timeout_s
        # Unvalidated: every value comes from the validated record (or is computed here).
        envelope = construct(
            Envelope,
            _ENVELOPE_FIELDS,
            {
                "task_id": spec.id,
                "attempt": record.attempt,
                "handler": spec.handler,
                "payload": spec.payload,
                "inputs": spec.inputs,
                "deadline": deadline,
                # One trace per task: each attempt is a child span of the submit span.
                "traceparent": child_traceparent(record.meta.get("traceparent")),
                "workflow_id": spec.workflow_id,
                "step": spec.step,
                "upstream": record.meta.get("upstream", {}),
                "heartbeat_timeout_s": spec.heartbeat_timeout_s,
                "signature": None,
            },
        )
        return encode_envelope(envelope, self.settings.secret)

    async def _mark_unschedulable(
        self, record: TaskRecord, decision: RoutingDecision, now: float | None = None
    ) -> None:
        reason = decision.suggestion or "; ".join(decision.reasons) or "no worker available"
        if decision.waiting_for_affinity:
            reason = "; ".join(decision.reasons) or "waiting for its sticky worker"
        if record.pending_reason == reason:
            return
        update = record.model_copy(update={"pending_reason": reason, "decision": decision})
        if await self._put_task(update, expect_version=record.version):
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
