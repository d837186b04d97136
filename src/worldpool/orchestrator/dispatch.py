"""Dispatch: route pending tasks and send them, a batch per pass; send a new task in its
submit call when that passes nothing by.

Decisions for a pass are taken against one pool snapshot (following the pool by its
changes, kept honest locally between refreshes), lean: a rejected candidate costs nothing
here, and only a task that waits gets (and records) the full explanation; the writes for the whole pass go out in one :meth:`Backend.dispatch_many` call,
atomic per task (compare-and-set on the record, slot reservation, send, pending removal,
event), so two replicas never dispatch one task twice and a lost reservation leaves
nothing to undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from worldpool import lifecycle
from worldpool.backends.base import Backend, Dispatch, DispatchOutcome, NewTask
from worldpool.config import Settings
from worldpool.envelope import encode_envelope
from worldpool.errors import ReservationError
from worldpool.identity import worker_key
from worldpool.models import (
    AttemptOutcome,
    Envelope,
    EventKind,
    RoutingDecision,
    TaskRecord,
    TaskStatus,
    Worker,
)
from worldpool.orchestrator.backlog import Backlog
from worldpool.orchestrator.clock import BackendClock
from worldpool.orchestrator.coalesce import Coalescer
from worldpool.orchestrator.events import task_event
from worldpool.orchestrator.pending import PendingQueue
from worldpool.orchestrator.pool import PoolView
from worldpool.orchestrator.records import RecordCache
from worldpool.orchestrator.signals import Changes
from worldpool.orchestrator.transitions import ACTIVE, QUEUED, Transitions
from worldpool.orchestrator.waiting import WaitNotes
from worldpool.routing import Router
from worldpool.routing.engine import KEPT_FOR_INTERACTIVE, WAITING_FOR_SLOT
from worldpool.tracing import hop, hop_attributes
from worldpool.unchecked import construct

log = logging.getLogger("worldpool.orchestrator.core")

# Pending tasks read per dispatch pass: a few per free slot, so a long queue is not re-read
# (and re-routed) in full on every pass.
PENDING_PER_SLOT = 4
MIN_PENDING_READ = 100
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields) - {"signature"}


class Dispatcher:
    """The dispatch loop, its passes, and the creation of new tasks."""

    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        router: Router,
        pool: PoolView,
        pending: PendingQueue,
        records: RecordCache,
        clock: BackendClock,
        changes: Changes,
        transitions: Transitions,
        *,
        submit_only: bool = False,
    ) -> None:
        self._backend = backend
        self._submit_only = submit_only
        self._queue_seen_busy = -1e9  # submit-only: when a create found tasks queued
        self._settings = settings
        self._router = router
        self._pool = pool
        self._pending = pending
        self._records = records
        self._clock = clock
        self._changes = changes
        self._transitions = transitions
        self._waits = WaitNotes(backend, records, changes, transitions)
        self._creates: Coalescer[NewTask, DispatchOutcome] = Coalescer(backend.create_tasks)
        self.backlog = Backlog(pool, router)
        # The longest the dispatcher sleeps, and the longest it goes without reading the
        # pending queue.
        self.idle_s = min(0.5, settings.heartbeat_s / 2)

    async def run(self, stopping: Callable[[], bool]) -> None:
        """The dispatch loop: a pass when woken (or every ``idle_s``) until ``stopping()``
        (checked as well as cancelled: ``asyncio.wait_for`` can lose a cancellation that
        races a wake-up)."""
        wake = self._changes.dispatcher
        while not stopping():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.idle_s)
            wake.clear()
            try:
                await self.dispatch_once()
            except Exception:  # never let one bad record stop dispatching
                log.exception("dispatch pass failed; retrying")
                await asyncio.sleep(self.idle_s)

    async def dispatch_once(self) -> int:
        """Route pending tasks that can go now. Returns how many were dispatched.

        Decisions for the batch are taken against one pool snapshot (slots taken locally
        as they are handed out, re-read every POOL_REFRESH_S); then one
        :meth:`Backend.dispatch_many` call (one round trip on Redis) compare-and-sets each
        record, reserves its slot, sends it and appends its event, atomically per task, so
        two replicas never dispatch one task twice."""
        pool = self._pool
        if pool.stale:
            await pool.refresh()
        free = pool.free_slots()
        limit = max(MIN_PENDING_READ, PENDING_PER_SLOT * self.backlog.useful_slots(free))
        ids = await self._pending.read(limit)
        if not ids:
            return 0
        now = await self._clock.now()
        plans: list[tuple[TaskRecord, Dispatch]] = []
        stale: list[str] = []
        waiting: list[TaskRecord] = []  # fit, but no slot now (in queue order)
        kept_back: set[str] = set()  # ... of those, the ones the interactive reserve holds
        records = await self._transitions.records_of(ids)
        self.backlog.seen(records)
        odd = [r.id for r in records if r is not None and r.status not in QUEUED]
        if odd:  # queued, yet the cached record says otherwise: another writer moved it
            for task_id in odd:
                self._records.drop(task_id)
            records = await self._transitions.records_of(ids)
        busy_shapes: dict[tuple[object, ...] | None, bool] = {}  # -> kept for interactive
        for record in records:
            if record is None:
                continue
            if record.status in QUEUED:
                self._pending.still_queued()  # until it is sent below
            if record.status is TaskStatus.DISPATCHED:
                await self._check_interrupted_dispatch(record, now)
                continue
            if record.status.terminal or record.status in ACTIVE:
                stale.append(record.id)
                continue
            if record.not_before > now:
                continue
            shape = self.backlog.shape(record)
            if free <= 0 or shape in busy_shapes:  # it waits for a slot to come back
                waiting.append(record)
                if busy_shapes.get(shape):
                    kept_back.add(record.id)
                continue
            # Lean (winner and runner-up only); a task that waits gets the full
            # explanation, recorded (again every EXPLAIN_AGAIN_S while it waits).
            ctx = await pool.context(record, now)
            decision = self._router.decide(ctx, pool.snapshot, explain=False)
            if decision.winner is None:
                if _backlog(decision):  # it fits once a slot is free
                    kept = KEPT_FOR_INTERACTIVE in decision.reasons[0]
                    if shape is not None:  # and so would its like, in this pass
                        busy_shapes[shape] = kept
                    waiting.append(record)
                    if kept:
                        kept_back.add(record.id)
                    continue
                if self._waits.due(record.id, now):
                    decision = self._router.decide(ctx, pool.snapshot)
                    await self._waits.unschedulable(record, decision, now)
                continue
            worker = pool.worker(decision.winner)
            pool.adjust_running(worker.id, +1)  # taken now, so the next decision sees it
            free -= 1
            plans.append((record, self._plan(record, worker, decision, now)))
        await asyncio.gather(*(self._pending.remove(i) for i in stale))
        for _, item in plans:  # a successful write makes it version + 1
            self._records.put_predicted(item.record, item.expect_version + 1)
        outcomes = await self._backend.dispatch_many([item for _, item in plans])
        sent = 0
        for (record, item), outcome in zip(plans, outcomes, strict=True):
            if outcome.sent:
                sent += 1
                continue
            pool.adjust_running(item.worker_id, -1)
            self._records.drop(record.id)
            if outcome.reason:  # lost the race for the slot; nothing was written
                pool.mark_stale(item.worker_id)  # the snapshot was wrong about it
                reason = str(ReservationError(item.worker_id, outcome.reason))
                back = record.model_copy(update={"pending_reason": reason})
                await self._transitions.put(back, expect_version=record.version)
            # conflict: another replica (or a cancel) got there first
        self._waits.sent(now, sent)
        await self._waits.busy(waiting, now, kept_back)
        self._pending.pass_done(read=len(ids), sent=sent)
        if sent:  # another pass at once only if the queue was longer than what was read
            self._changes.notify(wake_dispatcher=len(ids) >= limit)
        return sent

    async def create(self, record: TaskRecord) -> TaskRecord | None:
        """Store a new task (None if its id is taken): sent at once when it may be (see
        :meth:`_route_at_submit`), queued for a dispatch pass otherwise. Concurrent submits
        are coalesced into one backend call."""
        event = task_event(
            EventKind.TASK_SUBMITTED,
            record,
            record.submitted_at,
            message=f"handler {record.spec.handler}",
            data={"spec": record.spec.model_dump(mode="json")},
        )  # replayable
        routed = await self._route_at_submit(record)
        if routed is not None:  # created (version 1), then sent (version 2)
            self._records.put_predicted(routed.record, 2)
        try:
            outcome = await self._creates(NewTask(record, event, routed, self._submit_only))
        except BaseException:
            if routed is not None:  # sent or not, unknown: assume nothing
                self._unroute(routed, stale_pool=True)
            raise
        if routed is not None and not outcome.sent:
            self._unroute(routed, stale_pool=bool(outcome.reason))
            if not outcome.reason and not outcome.conflict:  # tasks were queued already
                self._queue_seen_busy = time.monotonic()
        if outcome.conflict:
            return None
        if routed is not None and outcome.sent:
            self._changes.notify(wake_dispatcher=False)
            return routed.record
        self._pending.queued()  # create_tasks queued it
        self._records.put(record)
        self._changes.notify()
        return record

    def _unroute(self, routed: Dispatch, stale_pool: bool) -> None:
        """A submit's send did not happen: the slot taken locally and the record cached as
        sent are not so. ``stale_pool``: the snapshot was wrong about the worker."""
        self._pool.adjust_running(routed.worker_id, -1)
        self._records.drop(routed.record.id)
        if stale_pool:
            self._pool.mark_stale(routed.worker_id)

    async def _route_at_submit(self, record: TaskRecord) -> Dispatch | None:
        """Route a new task in its submit call, so the submit also sends it (one round
        trip, no dispatch pass), when that cannot pass anything by: the pending queue is
        known to be empty (a recent pass read it and left nothing, and nothing was queued
        since) and a worker can take the task now. Otherwise None: it is queued.

        "Recent" bounds what another process may have queued unseen (it also calls
        ``wake()`` through ``worldpool serve``): the dispatcher reads the queue at least
        every idle interval, so a submit here passes such a task by for at most two.

        A submit-only side (a client) cannot know the queue: the backend sends the task
        only if the queue is empty at the create (``NewTask.only_if_queue_empty``)."""
        if self._submit_only:  # while the queue was busy lately, routing here is wasted
            if time.monotonic() - self._queue_seen_busy < 2 * self.idle_s:
                return None
        elif not self._pending.known_empty_since(2 * self.idle_s):
            return None
        now = await self._clock.now()
        if record.not_before > now:
            return None
        pool = self._pool
        if pool.loading:  # a big pool's first read: serve sends it meanwhile
            self._pending.queued()
            return None
        if pool.stale:
            await pool.refresh()
        try:
            ctx = await pool.context(record, now)
            decision = self._router.decide(ctx, pool.snapshot, explain=False)
        except Exception:  # a routing plugin's bug must not lose the submit: queue it
            log.exception("routing task %s at submit failed; queueing it", record.id)
            decision = None
        if decision is None or decision.winner is None:  # queued (the dispatcher says why),
            self._pending.queued()  # and later submits queue behind it
            return None
        worker = pool.worker(decision.winner)
        if self._submit_only and worker.profile.credential_proof and not self._settings.secret:
            self._pending.queued()  # it takes only envelopes signed for it: serve sends it
            return None
        pool.adjust_running(worker.id, +1)
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
        profile = worker.profile
        nxt = lifecycle.dispatched(
            record, worker.id, profile.location.region, now, profile.cost_per_hour
        )
        nxt.decision = decision
        event = task_event(
            EventKind.TASK_DISPATCHED,
            nxt,
            now,
            worker_id=worker.id,
            message=_why(decision),
            data={
                "region": worker.profile.location.region,
                "failover": lifecycle.last_attempt_lost(record),
                "runner_up": decision.runner_up,
            },
        )
        expect = record.version if expect_version is None else expect_version
        return Dispatch(
            record=nxt,
            expect_version=expect,
            worker_id=worker.id,
            envelope=self._envelope(nxt, worker.id),
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
        if now - dispatched_at > 4 * self._settings.offline_after_s:
            log.warning(
                "task %s was dispatched but never sent (orchestrator restart?); re-routing it",
                record.id,
            )
            await self._transitions.lose_attempt(
                record,
                "dispatch interrupted before the send",
                AttemptOutcome.DISPATCH_INTERRUPTED,
            )

    def _envelope(self, record: TaskRecord, worker_id: str) -> bytes:
        spec = record.spec
        sent = time.time()
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
                "traceparent": hop(
                    "worldpool.dispatch", record.traceparent, hop_attributes(spec, record.attempt)
                ),
                "workflow_id": spec.workflow_id,
                "step": spec.step,
                "upstream": record.upstream,
                "heartbeat_timeout_s": spec.heartbeat_timeout_s,
                "signature": None,
                "secrets": spec.secrets,  # references only: the worker resolves them
                # Bound to its worker, signed with that worker's key, valid for a while:
                # no other worker accepts it, and it cannot start late or twice.
                "worker_id": worker_id,
                "expires_at": sent + self._settings.envelope_ttl_s,
                "nonce": secrets.token_hex(8),
            },
        )
        secret = self._settings.secret
        return encode_envelope(envelope, worker_key(secret, worker_id) if secret else None)


def _backlog(decision: RoutingDecision) -> bool:
    """A lean decision that found fitting workers, all busy: the task is queued, not stuck."""
    return bool(decision.reasons) and decision.reasons[0].startswith(WAITING_FOR_SLOT)


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
