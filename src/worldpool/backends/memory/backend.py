""":class:`MemoryBackend`: the :class:`~worldpool.backends.base.Backend` contract on one
:class:`~worldpool.backends.memory.store.MemoryStore` (see :mod:`worldpool.backends.memory`).

Each operation mutates the store with no ``await`` inside its change, calling the rules of
:mod:`.rules`; the results stream's consumers are :mod:`.results`, the pool's views
:mod:`.pool`.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from worldpool.backends.base import (
    Backend,
    DeadLetter,
    Delivery,
    Dispatch,
    DispatchOutcome,
    EffectClaim,
    EpochMark,
    NewTask,
    PoolChanges,
    PoolCursor,
    PushedRecord,
    ReplyPage,
    ResultMessage,
)
from worldpool.backends.memory import pool, rules
from worldpool.backends.memory.results import ResultsReader
from worldpool.backends.memory.store import MemoryStore, ReplyBox, clone
from worldpool.config import Settings
from worldpool.errors import NotFoundError, ValidationError
from worldpool.models import (
    Event,
    HeartbeatReply,
    TaskRecord,
    TaskResult,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
    WorkflowRecord,
)

Clock = Callable[[], float]


class MemoryBackend(Backend):
    """The :class:`Backend` contract in one process. ``clock`` is injectable for tests."""

    name = "memory"

    def __init__(
        self,
        settings: Settings | None = None,
        clock: Clock = time.time,
        *,
        store: MemoryStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._clock = clock
        self._s = store or MemoryStore(event_log_max=self.settings.event_log_max)
        self._results = ResultsReader(self._s, clock, self.settings.results_claim_after_s)

    def reconnect(self) -> MemoryBackend:
        """A new client on the same store, as if this process had restarted."""
        return MemoryBackend(self.settings, self._clock, store=self._s)

    async def now(self) -> float:
        return self._clock()

    # ------------------------------------------------------------------ registry
    async def register(self, profile: WorkerProfile) -> WorkerState:
        s = self._s
        s.profiles[profile.id] = clone(profile)
        s.offered.update(profile.handlers)
        slots = s.slots.setdefault(profile.id, set())
        s.queue(profile.id)
        state = WorkerState(
            worker_id=profile.id,
            status=WorkerStatus.ONLINE,
            running=len(slots),
            last_heartbeat=self._clock(),
        )
        s.states[profile.id] = state
        s.pool_change(profile.id)
        s.heard_from(profile.id, state.last_heartbeat)
        return clone(state)

    async def heartbeat(
        self, state: WorkerState, in_flight: dict[str, int] | None = None
    ) -> HeartbeatReply:
        s = self._s
        worker_id = state.worker_id
        stored = s.states.get(worker_id)
        if stored is None:
            raise NotFoundError("worker", worker_id)
        before = stored
        now = self._clock()
        if stored.status is not WorkerStatus.OFFLINE:
            # The worker owns status and its caches; the backend owns running and the time.
            stored = clone(state).model_copy(
                update={"running": len(s.slots.get(worker_id, ())), "last_heartbeat": now}
            )
            s.states[worker_id] = stored
            s.heard_from(worker_id, now)
            if pool.routing_part(before) != pool.routing_part(stored):
                s.pool_change(worker_id)
        revoked = [
            task_id
            for task_id, attempt in (in_flight or {}).items()
            if not rules.owns(s, task_id, worker_id, attempt)
        ]
        return HeartbeatReply(status=stored.status, revoked=revoked, server_time=now)

    async def list_workers(self) -> list[Worker]:
        return [pool.worker(self._s, worker_id) for worker_id in sorted(self._s.profiles)]

    async def mark_offline(self, worker_id: str) -> bool:
        state = self._s.states.get(worker_id)
        if state is None or state.status is WorkerStatus.OFFLINE:
            return False
        state.status = WorkerStatus.OFFLINE
        self._s.pool_change(worker_id)
        return True

    # ------------------------------------------------------------------ delivery
    async def receive(
        self, worker_id: str, max_count: int = 1, block_s: float = 0.0, *, taken: bool = False
    ) -> list[Delivery]:
        queue = self._s.queue(worker_id)
        if taken:
            return sorted(queue.pending.values(), key=lambda d: d.id)[:max_count]
        await queue.signal.wait_until(lambda: bool(queue.new), block_s)
        took: list[Delivery] = []
        while queue.new and len(took) < max_count:
            delivery = queue.new.popleft()
            queue.pending[delivery.id] = delivery
            took.append(delivery)
        return took

    async def ack(self, worker_id: str, delivery_id: str) -> None:
        queue = self._s.queues.get(worker_id)
        if queue is not None:
            queue.pending.pop(delivery_id, None)

    async def reclaim(self, worker_id: str) -> list[Delivery]:
        s = self._s
        if worker_id in s.slots:
            s.slots[worker_id].clear()
        queue = s.queues.get(worker_id)
        if queue is None:
            return []
        unacked = sorted([*queue.pending.values(), *queue.new], key=lambda d: d.id)
        queue.pending.clear()
        queue.new.clear()
        return unacked

    async def release(self, worker_id: str, task_id: str) -> bool:
        slots = self._s.slots.get(worker_id)
        if slots is None or task_id not in slots:
            return False
        slots.discard(task_id)
        return True

    # ------------------------------------------------------------------ results
    async def dispatch_many(self, batch: list[Dispatch]) -> list[DispatchOutcome]:
        return [rules.dispatch(self._s, item) for item in batch]  # no await: each is atomic

    async def complete(self, result: TaskResult, ack: str | None = None) -> bool:
        if ack is not None:
            await self.ack(result.worker_id, ack)
        s = self._s
        if not rules.owns(s, result.task_id, result.worker_id, result.attempt):
            return False
        s.results_new.append(ResultMessage(id=s.next_id(), result=clone(result)))
        if result.status.terminal:
            s.slots.get(result.worker_id, set()).discard(result.task_id)
        s.results_signal.notify()
        return True

    async def receive_results(
        self,
        consumer: str,
        max_count: int = 100,
        block_s: float = 0.0,
        ack: Sequence[str] = (),
    ) -> list[ResultMessage]:
        await self.ack_results(list(ack))
        # A restart's backlog first, in order; then what a dead consumer left; then new.
        return await self._results.take(consumer, max_count, block_s)

    async def ack_results(self, ids: list[str]) -> None:
        self._results.ack(ids)

    # ------------------------------------------------------------------ task and workflow state
    async def put_task(self, record: TaskRecord, expect_version: int | None = None) -> bool:
        return rules.put_task(self._s, record, expect_version)

    async def create_tasks(self, items: list[NewTask]) -> list[DispatchOutcome]:
        outcomes = []
        for item in items:  # no await inside: each item is atomic
            record = item.record
            if not rules.put_task(self._s, record, 0):
                outcomes.append(DispatchOutcome(sent=False, conflict=True))
                continue
            self._s.events.append(item.event)
            routed = item.dispatch
            if routed is not None and item.only_if_queue_empty and self._s.pending:
                routed = None  # tasks wait already: this one queues behind them
            refused = (
                "" if routed is None else rules.slot_refusal(self._s, routed.worker_id, record.id)
            )
            if routed is None or refused:
                self._queue(record.id, record.spec.priority)
                outcomes.append(DispatchOutcome(sent=False, reason=refused))
            else:
                outcomes.append(rules.dispatch_checked(self._s, routed))
        return outcomes

    async def list_due_tasks(self, now: float, limit: int = 1000) -> list[TaskRecord]:
        due = sorted((d, i) for i, d in self._s.deadlines.items() if d <= now)[:limit]
        return [clone(self._s.tasks[i]) for _, i in due]

    async def get_task(self, task_id: str) -> TaskRecord | None:
        record = self._s.tasks.get(task_id)
        return None if record is None else clone(record)

    async def get_tasks(self, task_ids: list[str]) -> list[TaskRecord | None]:
        return [await self.get_task(task_id) for task_id in task_ids]

    async def list_tasks(self, workflow_id: str | None = None) -> list[TaskRecord]:
        return [
            clone(record)
            for record in self._s.tasks.values()
            if workflow_id is None or record.spec.workflow_id == workflow_id
        ]

    async def list_active_tasks(self) -> list[TaskRecord]:
        active = (r for r in self._s.tasks.values() if not r.status.terminal)
        return [clone(r) for r in sorted(active, key=lambda r: r.id)]  # id order, as Redis

    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        bound = self._s.idempotency.get(key)
        if bound is None:
            self._s.idempotency[key] = task_id
        return bound

    async def put_workflow(self, record: WorkflowRecord, expect_version: int | None = None) -> bool:
        return rules.put_versioned(self._s.workflows, record.id, record, expect_version)

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        record = self._s.workflows.get(workflow_id)
        return None if record is None else clone(record)

    async def list_workflows(self) -> list[WorkflowRecord]:
        return [clone(record) for record in self._s.workflows.values()]

    # ------------------------------------------------------------------ pending queue
    async def add_pending(self, task_id: str, priority: int = 0) -> None:
        self._queue(task_id, priority)

    def _queue(self, task_id: str, priority: int) -> None:
        s = self._s
        if task_id not in s.pending:  # an id without a record is aged now (as in Redis)
            s.pending[task_id] = (-priority, s.ages.get(task_id) or next(s.ids))

    async def remove_pending(self, task_id: str) -> None:
        self._s.pending.pop(task_id, None)

    async def list_pending(self, limit: int = 1000) -> list[str]:
        ranked = sorted(self._s.pending.items(), key=lambda item: item[1])
        return [task_id for task_id, _ in ranked[:limit]]

    # ------------------------------------------------------------------ artifacts (raw blobs)
    async def put_blob(self, digest: str, data: bytes, ttl_s: float | None = None) -> None:
        now = self._clock()
        self._s.purge_expired_blobs(now)  # expired blobs nobody reads again must not pile up
        expires = None if ttl_s is None else now + ttl_s
        self._s.blobs[digest] = (bytes(data), expires)
        if expires is not None:
            heapq.heappush(self._s.blob_expiry, (expires, digest))

    async def get_blob(self, digest: str) -> bytes | None:
        entry = self._s.blobs.get(digest)
        if entry is None:
            return None
        data, expires = entry
        if expires is not None and expires <= self._clock():
            del self._s.blobs[digest]
            return None
        return data

    async def has_blob(self, digest: str) -> bool:
        return await self.get_blob(digest) is not None

    # ------------------------------------------------------------------ events
    async def append_event(self, event: Event) -> Event:
        return clone(self._s.events.append(event))

    async def read_events(
        self, after: str | None = None, limit: int = 1000, block_s: float = 0.0
    ) -> list[Event]:
        log = self._s.events
        log.index_after(after)  # a bad cursor fails now, not after block_s
        await log.signal.wait_until(lambda: log.index_after(after) < len(log.items), block_s)
        return log.read(after, limit)

    async def read_replies(
        self, client: str, after: str | None = None, limit: int = 100, block_s: float = 0.0
    ) -> ReplyPage:
        box = self._s.replies.setdefault(client, ReplyBox())
        seq = _reply_seq(after)
        await box.signal.wait_until(lambda: bool(box.items) and box.items[-1][0] > seq, block_s)
        found = box.after(seq, limit)
        pushed = [PushedRecord(r.id, r.version, record=r) for _, r in found]
        return ReplyPage(pushed, f"{found[-1][0]:020d}" if found else after)

    # ------------------------------------------------------------------ deployment epoch
    async def touch_epoch(self, candidate: str, previous: str | None = None) -> EpochMark:
        return rules.touch_epoch(self._s, candidate, previous, self._clock())

    async def read_epoch(self) -> EpochMark | None:
        e = self._s.epoch
        return None if e is None else replace(e, created=False)

    # ------------------------------------------------------------------ effect ledger
    async def claim_effect(
        self, key: str, task_id: str, worker_id: str, attempt: int, ttl_s: float
    ) -> EffectClaim:
        return rules.claim_effect(self._s, key, task_id, worker_id, attempt)

    async def finish_effect(
        self, key: str, task_id: str, worker_id: str, attempt: int, value: bytes
    ) -> bool:
        self._s.effects[key] = ("done", bytes(value))
        return rules.owns(self._s, task_id, worker_id, attempt)

    # ------------------------------------------------------------------ dead letters, leases
    async def dead_letter(self, worker_id: str, code: str, reason: str, data: bytes) -> None:
        letters = self._s.dead_letters
        letters.append(DeadLetter(worker_id, code, reason, bytes(data), self._clock()))
        while len(letters) > self._s.event_log_max:
            letters.popleft()

    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        return list(itertools.islice(reversed(self._s.dead_letters), limit))

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        now = self._clock()
        current = self._s.leases.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._s.leases[name] = (holder, now + ttl_s)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        current = self._s.leases.get(name)
        if current is not None and current[0] == holder:
            del self._s.leases[name]

    # ------------------------------------------------------------------ pool changes
    async def pool_changes(self, cursor: PoolCursor | None = None) -> PoolChanges:
        if cursor is None:
            return PoolChanges(pool.pool_cursor(self._s), await self.list_workers(), [], [], True)
        return pool.pool_changes_since(self._s, cursor)

    async def get_workers(self, worker_ids: Sequence[str]) -> list[Worker | None]:
        known = self._s.profiles
        return [pool.worker(self._s, i) if i in known else None for i in worker_ids]

    # ------------------------------------------------------------------ clients (issue 11)
    async def offered_handlers(self) -> frozenset[str] | None:
        return frozenset(self._s.offered)


def _reply_seq(after: str | None) -> int:
    if after is None:
        return 0
    try:
        return int(after)
    except ValueError:
        raise ValidationError(
            f"reply cursor {after!r} is not one the memory backend gave; pass None to read "
            "from the oldest kept"
        ) from None
