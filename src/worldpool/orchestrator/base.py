"""What every part of the orchestrator shares: state, events, transition follow-ups.

:class:`worldpool.orchestrator.core.Orchestrator` is assembled from small parts, each a mixin
on :class:`OrchestratorBase`: :mod:`worldpool.orchestrator.dispatch` (routing and sending),
:mod:`worldpool.orchestrator.results` (applying workers' reports), :mod:`worldpool.orchestrator.sweep` (liveness and
timeouts) and :mod:`worldpool.orchestrator.workflows` (DAG advancement). A written transition
yields its events (appended in batches) and its follow-ups (re-queueing, dead letters,
workflow advancement), both defined here so every part treats a transition the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import orjson

from worldpool import lifecycle
from worldpool.artifacts.store import ArtifactStore
from worldpool.backends.base import Backend, DispatchOutcome, NewTask
from worldpool.config import Settings
from worldpool.errors import NotFoundError
from worldpool.models import (
    Event,
    EventKind,
    JSONValue,
    TaskRecord,
    TaskStatus,
    WorkflowRecord,
)
from worldpool.orchestrator.coalesce import Coalescer
from worldpool.routing import PoolSnapshot, Router, RoutingPolicy
from worldpool.unchecked import construct

SWEEP_LEASE = "sweep"
_EVENT_FIELDS = frozenset(Event.model_fields) - {"seq"}
ACTIVE = frozenset({TaskStatus.DISPATCHED, TaskStatus.RUNNING})


RECORD_CACHE_MAX = 50_000
FINISHED_CACHE_MAX = 2_000
# How long a backend clock reading is extrapolated on hot paths before it is read again
# (see OrchestratorBase._now). Drift of a monotonic clock over a second is microseconds.
CLOCK_RESYNC_S = 1.0


class RecordCache:
    """The last version of the task records this orchestrator wrote, so the hot paths
    (dispatch, results) need not read back and decode what they just wrote.

    Safe because every write is compare-and-set on the version: a cached record that
    another writer (a replica, a cancel, the sweep) has since replaced fails its next write,
    which evicts it, and the caller re-reads. Cached records are shared: never mutate one
    (the lifecycle functions copy).

    Finished records are kept apart and only the last FINISHED_CACHE_MAX of them (for
    waiters, and so a late write of an older version is recognised): tens of thousands
    of finished records kept alive for nothing made every full garbage collection walk
    them, and throughput fell as tasks piled up."""

    def __init__(self, limit: int = RECORD_CACHE_MAX) -> None:
        self._limit = limit
        self._live: dict[str, TaskRecord] = {}
        self._finished: dict[str, TaskRecord] = {}
        self._watchers: dict[str, list[asyncio.Future[None]]] = {}

    def get(self, task_id: str) -> TaskRecord | None:
        record = self._live.get(task_id)
        return record if record is not None else self._finished.get(task_id)

    def put(self, record: TaskRecord) -> None:
        """Remember ``record`` unless a newer version is cached already (a report applied
        while the dispatch that wrote the older one was still awaiting its reply)."""
        cached = self.get(record.id)
        if cached is not None and cached.version > record.version:
            return
        self.drop(record.id)
        if not record.status.terminal:
            _put_bounded(self._live, record, self._limit)
            return
        _put_bounded(self._finished, record, FINISHED_CACHE_MAX)
        for future in self._watchers.pop(record.id, ()):
            _settle(future)

    def drop(self, task_id: str) -> None:
        self._live.pop(task_id, None)
        self._finished.pop(task_id, None)

    async def wait_terminal(self, task_id: str, timeout_s: float) -> None:
        """Return when a finished record of the task is put, or after ``timeout_s``."""
        futures = self._watchers.setdefault(task_id, [])
        try:
            await _wait_for_settle(futures, timeout_s)
        finally:
            if not futures and self._watchers.get(task_id) is futures:
                del self._watchers[task_id]


def _put_bounded(table: dict[str, TaskRecord], record: TaskRecord, limit: int) -> None:
    table[record.id] = record
    if len(table) > limit:
        del table[next(iter(table))]  # the oldest write


async def _wait_for_settle(futures: list[asyncio.Future[None]], timeout_s: float) -> None:
    """Add a future to ``futures`` and wait until it is settled or ``timeout_s`` passes
    (cheaper than ``asyncio.wait_for``, which makes a task per call), then remove it."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    futures.append(future)
    timer = loop.call_later(timeout_s, _settle, future)
    try:
        await future
    finally:
        timer.cancel()
        with contextlib.suppress(ValueError):
            futures.remove(future)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class OrchestratorBase:
    """Shared state and helpers of the orchestrator's parts (not used on its own)."""

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
        self._change_waiters: list[asyncio.Future[None]] = []
        self._loops: list[asyncio.Task[None]] = []
        self._affinity: dict[str, str] = {}  # affinity key -> worker that ran it last
        self._stopping = False
        self._generation = 0  # bumped on every change, so waiters never miss a wake-up
        self._pool_read_at = 0.0  # monotonic time of the last pool refresh (0: refresh now)
        self._records = RecordCache()
        self._creates: Coalescer[NewTask, DispatchOutcome] = Coalescer(self.backend.create_tasks)
        # Whether the pending queue may hold tasks this replica could dispatch when a slot
        # comes back: results wake the dispatcher only then (else every result would cost
        # a pending-queue read). Set by submits, re-queues and passes that left tasks.
        self._backlog = True
        # Whether the pending queue is known to be empty: the last pass read it and left
        # nothing, and nothing was queued since (a submit, a retry, a failover, a workflow
        # resume, a wake() from outside). Only then may a submit send its task at once.
        self._queue_empty = False
        self._unacked_results: list[str] = []  # applied, acknowledged with the next read
        self._queue_read_at = 0.0  # monotonic time of the last pending-queue read
        self._clock_base = 0.0  # a backend clock reading ...
        self._clock_read_at = -CLOCK_RESYNC_S  # ... and the monotonic time it was taken

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

    async def _wait_change(self, timeout_s: float, seen: int | None = None) -> None:
        """Wait for a change after generation ``seen`` (at once if one already happened
        while the caller was reading; None: the next change)."""
        if seen is not None and self._generation != seen:
            return
        await _wait_for_settle(self._change_waiters, timeout_s)

    async def _notify(self, wake_dispatcher: bool = True) -> None:
        """Something changed: wake the waiters (and the dispatcher, unless the change is
        the dispatcher's own and leaves it nothing new to do)."""
        self._generation += 1
        if wake_dispatcher:
            self._wake.set()
        waiters, self._change_waiters = self._change_waiters, []
        for future in waiters:
            _settle(future)

    def _adjust_running(self, worker_id: str, delta: int) -> None:
        """Keep the local snapshot's slot count honest between refreshes."""
        if worker_id not in self.pool_snapshot:
            return
        worker = self.pool_snapshot.workers[self.pool_snapshot.row_of(worker_id)]
        worker.state.running = max(0, worker.state.running + delta)
        self.pool_snapshot.update_state(worker.state)

    async def _lose_attempt(self, record: TaskRecord, reason: str) -> bool:
        now = await self.backend.now()
        nxt = lifecycle.failed_attempt(
            record, reason, now, retryable=True, lost=True, rng=self._rng
        )
        if not await self._put_task(nxt, expect_version=record.version):
            return False
        if record.worker_id:
            await self.backend.release(record.worker_id, record.id)
        await self._after_transition(record, nxt, record.worker_id or "")
        return True

    async def _cancel_task(self, record: TaskRecord, reason: str) -> bool:
        for _ in range(5):
            if record.status.terminal:
                return False
            nxt = lifecycle.cancelled(record, await self.backend.now(), reason)
            if await self._put_task(nxt, expect_version=record.version):
                await self.backend.remove_pending(record.id)
                if record.worker_id and record.status in ACTIVE:
                    await self.backend.release(record.worker_id, record.id)
                await self._emit(EventKind.TASK_CANCELLED, nxt, message=reason)
                await self._notify()
                return True
            record = await self.get_task(record.id)
        return False

    async def _redo_follow_ups(self, record: TaskRecord) -> None:
        """A report that changes nothing is a zombie's, or one replayed after an orchestrator
        died between writing the record and acknowledging the report; then the follow-ups of
        that write (advancing the workflow, re-queueing a retry) may be lost. Both are
        idempotent, so redo them."""
        if record.status.terminal and record.spec.workflow_id:
            await self._advance_workflow(record.spec.workflow_id)
        elif record.status in (TaskStatus.PENDING, TaskStatus.RETRYING):
            await self.backend.add_pending(record.id, record.spec.priority)
            self._queue_empty = False

    async def _now(self) -> float:
        """The backend's clock for hot paths (submit, dispatch, results): where reading it is
        a round trip, the last reading extrapolated with the local monotonic clock, read
        again every CLOCK_RESYNC_S (error: half a round trip). Saves a round trip per
        submit, dispatch pass and result batch; the sweep reads the real clock."""
        mono = time.monotonic()
        if self.backend.now_is_round_trip and mono - self._clock_read_at < CLOCK_RESYNC_S:
            return self._clock_base + (mono - self._clock_read_at)
        reading = await self.backend.now()
        self._clock_base, self._clock_read_at = reading, time.monotonic()
        return reading

    async def _put_task(self, record: TaskRecord, expect_version: int) -> bool:
        """Compare-and-set one task record, keeping the record cache coherent: every task
        write of the orchestrator goes through here (or updates the cache itself)."""
        if await self.backend.put_task(record, expect_version=expect_version):
            self._records.put(record)
            return True
        self._records.drop(record.id)
        return False

    async def _records_of(self, task_ids: list[str]) -> list[TaskRecord | None]:
        """The records, from the cache where it has them, the rest in one backend read."""
        found = [self._records.get(i) for i in task_ids]
        missing = [i for i, r in zip(task_ids, found, strict=True) if r is None]
        if not missing:
            return found
        read = dict(zip(missing, await self.backend.get_tasks(missing), strict=True))
        for record in read.values():
            if record is not None:
                self._records.put(record)
        return [r if r is not None else read[i] for i, r in zip(task_ids, found, strict=True)]

    async def _create(self, record: TaskRecord) -> TaskRecord | None:
        """Store a new task and queue it, or send it at once (see :mod:`.dispatch`)."""
        raise NotImplementedError

    async def _after_transition(
        self, before: TaskRecord, after: TaskRecord, worker: str, at: float | None = None
    ) -> None:
        """Events, queueing and workflow advancement after a successful write. ``at``: the
        clock reading of the operation that made the transition (None: read it now)."""
        at = await self._now() if at is None else at
        await self.backend.append_events(self._transition_events(before, after, worker, at))
        await self._follow_up(before, after, worker)
        await self._notify()

    def _transition_events(
        self, before: TaskRecord, after: TaskRecord, worker: str, at: float
    ) -> list[Event]:
        """The events of one written transition (appended by the caller, batched)."""
        status = after.status
        if status is TaskStatus.RUNNING and before.status is not TaskStatus.RUNNING:
            return [self._event(EventKind.TASK_STARTED, after, at, worker_id=worker)]
        if status is TaskStatus.RUNNING:
            return [
                self._event(
                    EventKind.TASK_PROGRESS,
                    after,
                    at,
                    worker_id=worker,
                    data={"progress": after.progress},
                )
            ]
        if status is TaskStatus.SUCCEEDED:
            return [
                self._event(
                    EventKind.TASK_SUCCEEDED, after, at, worker_id=worker, data=_usage(after)
                )
            ]
        if status in (TaskStatus.PENDING, TaskStatus.RETRYING):
            kind = (
                EventKind.TASK_RETRYING
                if status is TaskStatus.RETRYING
                else EventKind.TASK_FAILOVER
            )
            return [
                self._event(
                    kind,
                    after,
                    at,
                    worker_id=worker,
                    message=after.error or "",
                    data={"not_before": after.not_before},
                )
            ]
        if status is TaskStatus.FAILED:
            return [
                self._event(
                    EventKind.TASK_FAILED, after, at, worker_id=worker, message=after.error or ""
                ),
                self._event(EventKind.TASK_DEAD_LETTERED, after, at, message=after.error or ""),
            ]
        return []

    async def _follow_up(self, before: TaskRecord, after: TaskRecord, worker: str) -> None:
        """What a written transition implies besides its events: the local slot count,
        sticky placement, re-queueing, the dead letter, workflow advancement."""
        status = after.status
        if before.worker_id and before.status in ACTIVE and status not in ACTIVE:
            self._adjust_running(before.worker_id, -1)  # the backend gave the slot back
        if status is TaskStatus.SUCCEEDED and after.spec.affinity:
            self._affinity[after.spec.affinity.key] = worker
        elif status in (TaskStatus.PENDING, TaskStatus.RETRYING):
            await self.backend.add_pending(after.id, after.spec.priority)
            self._backlog = True
            self._queue_empty = False
        elif status is TaskStatus.FAILED:
            await self.backend.dead_letter(
                worker, "failed", after.error or "", orjson.dumps({"task_id": after.id})
            )
        if status.terminal and after.spec.workflow_id:
            await self._advance_workflow(after.spec.workflow_id)

    async def _advance_workflow(self, workflow_id: str) -> None:
        """Create tasks for ready steps; settle the workflow (see :mod:`.workflow_runner`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ events
    def _event(
        self,
        kind: EventKind,
        record: TaskRecord,
        at: float,
        *,
        worker_id: str | None = None,
        message: str = "",
        data: dict[str, JSONValue] | None = None,
    ) -> Event:
        # Unvalidated: every value comes from the (validated) record or from our own code,
        # and a task makes 3-4 events on the fast path. Events read back are validated.
        spec = record.spec
        return construct(
            Event,
            _EVENT_FIELDS,
            {
                "kind": kind,
                "at": at,
                "seq": None,
                "task_id": spec.id,
                "workflow_id": spec.workflow_id,
                "step": spec.step,
                "worker_id": worker_id or record.worker_id,
                "attempt": record.attempt or None,
                "message": message,
                "data": {"handler": spec.handler, **(data or {})},
            },
        )

    async def _emit(
        self,
        kind: EventKind,
        record: TaskRecord,
        *,
        worker_id: str | None = None,
        message: str = "",
        data: dict[str, JSONValue] | None = None,
        at: float | None = None,
    ) -> None:
        at = await self.backend.now() if at is None else at
        await self.backend.append_event(
            self._event(kind, record, at, worker_id=worker_id, message=message, data=data)
        )

    async def _emit_event(self, event: Event, at: float | None = None) -> None:
        """Append an event stamped ``at`` (the backend clock reading the caller already
        has, saving a round trip), or the backend's clock now."""
        event.at = await self.backend.now() if at is None else at
        await self.backend.append_event(event)


def _usage(record: TaskRecord) -> dict[str, JSONValue]:
    return {
        "tokens_used": record.tokens_used,
        "cost_usd": record.cost_usd,
        "handler": record.spec.handler,
    }
