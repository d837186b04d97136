"""The Backend contract: the only place that knows about storage and transport.

Every backend (``memory``, ``redis``) passes the one conformance suite in
``tests/backends/``. Policy (retries, backoff, routing) lives in the orchestrator; a
backend only guarantees the atomic steps below.

Slot accounting: a worker's *slots* are the set of task ids reserved on it. ``running`` in
:class:`WorkerState` is the size of that set, owned by the backend (heartbeats never
overwrite it). A slot is taken by a dispatch (:meth:`dispatch_many`, or :meth:`create_tasks`
for a task routed at submit) and given back by a terminal :meth:`complete`, by
:meth:`release`, or wholesale by :meth:`reclaim`. A worker can take a slot when it is
ONLINE and has fewer slots than its ``max_concurrency`` (a task that already holds one on it
takes no second one); otherwise the dispatch is refused with a reason and nothing changes.

Compare-and-set: a write with an expected version happens only if the stored version
equals it (a missing record has version 0) and bumps the stored version by one.

Fencing: :meth:`complete` accepts a result only if the task's record names the same
attempt and worker and is not terminal. Anything else (a zombie worker's late result, a
duplicate) is ignored and ``False`` is returned.

Time: every timestamp the backend writes (heartbeats, leases) uses :meth:`now`, the
backend's clock (Redis server time for the Redis backend), so skewed worker clocks cannot
cause false failovers.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from worldpool.backends.messages import (
    DeadLetter,
    Delivery,
    Dispatch,
    DispatchOutcome,
    EffectClaim,
    EpochMark,
    EventPage,
    NewTask,
    PoolChanges,
    PoolCursor,
    PushedRecord,
    QueuedPage,
    ReplyPage,
    ResultMessage,
)
from worldpool.lifecycle import timeout_deadline
from worldpool.models import (
    Event,
    EventKind,
    HeartbeatReply,
    TaskRecord,
    TaskResult,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkflowRecord,
)

__all__ = [
    "Backend",
    "DeadLetter",
    "Delivery",
    "Dispatch",
    "DispatchOutcome",
    "EffectClaim",
    "EpochMark",
    "EventPage",
    "NewTask",
    "PoolChanges",
    "PoolCursor",
    "PushedRecord",
    "QueuedPage",
    "ReplyPage",
    "ResultMessage",
]


class Backend(ABC):
    """Abstract storage + transport. All methods are coroutine-safe within one event loop."""

    name: str = "abstract"
    # True when :meth:`now` is a network round trip (Redis TIME): a caller on a hot path may
    # then extrapolate a recent reading with its monotonic clock instead of asking each time.
    now_is_round_trip: bool = False

    # ------------------------------------------------------------------ lifecycle
    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @abstractmethod
    async def now(self) -> float:
        """The backend's clock, epoch seconds."""

    # ------------------------------------------------------------------ registry
    @abstractmethod
    async def register(self, profile: WorkerProfile) -> WorkerState:
        """Store the profile; the worker is ONLINE with a fresh heartbeat. Re-registering an
        existing id replaces its profile and brings it back online (its old slots stay until
        reclaimed)."""

    @abstractmethod
    async def heartbeat(
        self, state: WorkerState, in_flight: dict[str, int] | None = None
    ) -> HeartbeatReply:
        """Record ``state`` (status, latency, cached, sticky_keys; never ``running``) with
        ``last_heartbeat = now()``. ``in_flight`` maps task id -> attempt the worker is
        running; the reply's ``revoked`` lists those whose record no longer names this
        worker and attempt, or that are terminal. A worker marked OFFLINE stays OFFLINE
        (the reply says so) until it registers again. Unknown worker: NotFoundError."""

    @abstractmethod
    async def list_workers(self) -> list[Worker]:
        """Every registered worker (any status), with ``state.running`` = slots held."""

    @abstractmethod
    async def mark_offline(self, worker_id: str) -> bool:
        """Set status OFFLINE. True if it was not already offline (unknown id: False)."""

    # ------------------------------------------------------------------ delivery
    @abstractmethod
    async def receive(
        self, worker_id: str, max_count: int = 1, block_s: float = 0.0, *, taken: bool = False
    ) -> list[Delivery]:
        """Take up to ``max_count`` new deliveries, waiting up to ``block_s`` for the first.
        Taken deliveries stay pending (unacknowledged) until :meth:`ack`. With ``taken``:
        the deliveries this worker took and has not acked, oldest first, nothing new and no
        wait (after a read whose answer was lost on a stalled connection)."""

    @abstractmethod
    async def ack(self, worker_id: str, delivery_id: str) -> None:
        """Acknowledge a delivery (it will not be reclaimed). Unknown ids are ignored."""

    @abstractmethod
    async def reclaim(self, worker_id: str) -> list[Delivery]:
        """Remove and return everything sent to the worker and not acknowledged (taken but
        unacked, and never taken), in send order, as :meth:`receive` returns them (with
        ``task_id``), and free all its slots."""

    @abstractmethod
    async def release(self, worker_id: str, task_id: str) -> bool:
        """Give back the slot ``task_id`` holds on the worker (timeout, cancel). True if held."""

    # ------------------------------------------------------------------ results
    @abstractmethod
    async def complete(self, result: TaskResult, ack: str | None = None) -> bool:
        """Fenced report from a worker. If the task record's ``attempt`` and ``worker_id``
        match the result and the record is not terminal: queue the result for the
        orchestrator and, when ``result.status`` is terminal, free the slot; return True.
        Otherwise change nothing and return False. ``ack``: a delivery id of the reporting
        worker to acknowledge in the same step, whether or not the report was accepted
        (a worker's last report for a task then costs one round trip, not two)."""

    @abstractmethod
    async def receive_results(
        self,
        consumer: str,
        max_count: int = 100,
        block_s: float = 0.0,
        ack: Sequence[str] = (),
    ) -> list[ResultMessage]:
        """Take queued results (each goes to one consumer of the group), waiting up to
        ``block_s`` for the first. Unacked results are redelivered to a consumer that calls
        with ``consumer`` again after a restart, and results another consumer took and left
        unacked for ``settings.results_claim_after_s`` (a dead replica) are claimed by this
        one, so no result is stranded. ``ack``: results applied since the last call,
        acknowledged first (as by :meth:`ack_results`), in the same round trip where the
        backend can."""

    @abstractmethod
    async def ack_results(self, ids: list[str]) -> None:
        """Acknowledge applied results."""

    # ------------------------------------------------------------------ task and workflow state
    @abstractmethod
    async def put_task(self, record: TaskRecord, expect_version: int | None = None) -> bool:
        """Store the record. With ``expect_version``: only if the stored version equals it
        (a missing record has version 0). On success the stored copy (and ``record``) get
        ``version + 1``. Returns False if the compare failed."""

    @abstractmethod
    async def get_task(self, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    async def get_tasks(self, task_ids: list[str]) -> list[TaskRecord | None]: ...

    @abstractmethod
    async def list_tasks(self, workflow_id: str | None = None) -> list[TaskRecord]: ...

    @abstractmethod
    async def list_active_tasks(self) -> list[TaskRecord]:
        """Every task that is not terminal (what the liveness sweep watches), without
        reading the finished history."""

    @abstractmethod
    async def create_tasks(self, items: list[NewTask]) -> list[DispatchOutcome]:
        """Submit each :class:`NewTask` in its own atomic step, in one round trip where the
        backend can: store ``record`` only if no task has its id (``conflict`` and no change
        otherwise; on success its ``version`` becomes 1), append ``event`` and queue it for
        routing at its spec's priority. An item with a ``dispatch`` is, in that same step,
        dispatched as by :meth:`dispatch_many` instead of queued if its worker can take a
        slot (its routed record stored with version 2, ``sent``), and queued otherwise
        (``reason`` says why)."""

    async def put_tasks(
        self,
        writes: list[tuple[TaskRecord, int | None]],
        events: list[list[Event]] | None = None,
    ) -> list[bool]:
        """:meth:`put_task` for each (record, expect_version), in one round trip where the
        backend can; each write is still its own compare-and-set. ``events[i]`` (the events
        of write ``i``'s transition) are appended, in order, if and only if write ``i``
        happens, in the same atomic step."""
        done = []
        for i, (record, expect) in enumerate(writes):
            ok = await self.put_task(record, expect)
            if ok and events:
                await self.append_events(events[i])
            done.append(ok)
        return done

    async def list_due_tasks(self, now: float, limit: int = 1000) -> list[TaskRecord]:
        """Unfinished tasks one of whose timeouts may have passed at ``now``
        (:func:`worldpool.lifecycle.timeout_deadline` <= now), soonest first: what the
        sweep checks. Backends index the deadline on every put, so this does not read
        every unfinished record. The default scans :meth:`list_active_tasks`."""
        due = [
            (d, r)
            for r in await self.list_active_tasks()
            if (d := timeout_deadline(r)) is not None and d <= now
        ]
        return [r for _, r in sorted(due, key=lambda pair: pair[0])[:limit]]

    @abstractmethod
    async def dispatch_many(self, batch: list[Dispatch]) -> list[DispatchOutcome]:
        """For each :class:`Dispatch`, atomically: if a record is stored with version
        ``expect_version`` (else ``conflict``) and the worker can take a slot for the task
        (else ``reason``), store the record (its ``version`` is bumped as by
        :meth:`put_task`), take the slot, append the envelope to the worker's queue, remove
        the task from the pending queue and append the event (``sent``, with the delivery
        id); otherwise change nothing. Compare-and-set and
        reservation are one step, so two replicas never dispatch a task twice and a lost
        reservation leaves nothing to undo. One round trip for the batch where the backend
        can."""

    async def append_events(self, events: list[Event]) -> list[Event]:
        """:meth:`append_event` for each, in order, in one round trip where the backend can."""
        return [await self.append_event(event) for event in events]

    @abstractmethod
    async def claim_idempotency_key(self, key: str, task_id: str) -> str | None:
        """Bind ``key`` to ``task_id`` if unbound; return the task id it was already bound to
        (None if this call bound it)."""

    @abstractmethod
    async def put_workflow(self, record: WorkflowRecord, expect_version: int | None = None) -> bool:
        """As :meth:`put_task`, for workflows."""

    @abstractmethod
    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None: ...

    @abstractmethod
    async def list_workflows(self) -> list[WorkflowRecord]: ...

    # ------------------------------------------------------------------ pending queue
    @abstractmethod
    async def add_pending(self, task_id: str, priority: int = 0) -> None:
        """Queue a task for routing. Idempotent. A task keeps its age (its first put), so a
        re-queued one (failed over, retried) goes ahead of everything newer."""

    @abstractmethod
    async def remove_pending(self, task_id: str) -> None: ...

    @abstractmethod
    async def list_pending(self, limit: int = 1000) -> list[str]:
        """Pending task ids, highest priority first, then oldest first."""

    # ------------------------------------------------------------------ artifacts (raw blobs)
    @abstractmethod
    async def put_blob(self, digest: str, data: bytes, ttl_s: float | None = None) -> None: ...

    @abstractmethod
    async def get_blob(self, digest: str) -> bytes | None: ...

    @abstractmethod
    async def has_blob(self, digest: str) -> bool: ...

    # ------------------------------------------------------------------ events
    @abstractmethod
    async def append_event(self, event: Event) -> Event:
        """Append to the capped event log; returns the event with ``seq`` set. ``seq``
        values sort in append order as strings of equal shape (``"%020d"`` or Redis ids)."""

    @abstractmethod
    async def read_events(
        self, after: str | None = None, limit: int = 1000, block_s: float = 0.0
    ) -> list[Event]:
        """Events with seq after ``after`` (None: from the oldest kept), waiting up to
        ``block_s`` for at least one."""

    @abstractmethod
    async def read_replies(
        self, client: str, after: str | None = None, limit: int = 100, block_s: float = 0.0
    ) -> ReplyPage:
        """The final records of the tasks submitted with ``reply_to=client``, pushed by the
        write that ended each (after ``after``; None: from the oldest kept), waiting up to
        ``block_s`` for at least one. A record may come twice (at least once)."""

    async def read_queued(
        self, after: str | None = None, limit: int = 1000, block_s: float = 0.0
    ) -> QueuedPage:
        """Tasks that creates queued for a dispatch pass (not sent in their create) after
        ``after`` (None: from now on), waiting up to ``block_s`` for one: what wakes a
        dispatcher when another process submits. This default reads the event log's
        submissions (every create); Redis keeps a stream of just the queued ones."""
        kinds = frozenset({EventKind.TASK_SUBMITTED})
        if after is None:  # skip to the end of the log: the backlog is no news
            while True:
                skipped = await self.read_events_of(frozenset(), after, 5000)
                if skipped.cursor == after:
                    break
                after = skipped.cursor
        # "": the log's start (it was empty), where None would mean "from now" again
        page = await self.read_events_of(kinds, after or None, limit, block_s)
        return QueuedPage([e.task_id for e in page.events if e.task_id], page.cursor or "")

    async def read_events_of(
        self,
        kinds: frozenset[EventKind],
        after: str | None = None,
        limit: int = 1000,
        block_s: float = 0.0,
    ) -> EventPage:
        """:meth:`read_events`, keeping only events of ``kinds``. The page's ``cursor`` is
        past every event read, matching or not, so a reader that wants few kinds does not
        read the rest again; a backend may skip decoding the rest (Redis does)."""
        events = await self.read_events(after, limit, block_s)
        return EventPage(
            [e for e in events if e.kind in kinds], events[-1].seq if events else after
        )

    # ------------------------------------------------------------------ deployment epoch
    @abstractmethod
    async def touch_epoch(self, candidate: str, previous: str | None = None) -> EpochMark:
        """The deployment epoch, one more on its mark; made as ``candidate`` if there is
        none (the first start, or a backend that came back empty: ``previous`` names the
        epoch the caller knew, recorded as lost)."""

    @abstractmethod
    async def read_epoch(self) -> EpochMark | None:
        """The deployment epoch as it is (None before the first start), mark unchanged."""

    # ------------------------------------------------------------------ effect ledger
    @abstractmethod
    async def claim_effect(
        self, key: str, task_id: str, worker_id: str, attempt: int, ttl_s: float
    ) -> EffectClaim:
        """Claim effect ``key`` for an attempt, checking its fencing token (the record must
        name ``worker_id`` and ``attempt`` and not be terminal) in the same step. A claim
        left by an older attempt passes to this one. The entry lives ``ttl_s``."""

    @abstractmethod
    async def finish_effect(
        self, key: str, task_id: str, worker_id: str, attempt: int, value: bytes
    ) -> bool:
        """Record effect ``key`` as applied (with its JSON ``value``), even by an attempt
        fenced meanwhile (the effect happened: no later attempt may apply it again).
        Returns whether the attempt still owned its task."""

    # ------------------------------------------------------------------ dead letters, leases
    @abstractmethod
    async def dead_letter(self, worker_id: str, code: str, reason: str, data: bytes) -> None: ...

    @abstractmethod
    async def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    @abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew a named lease (True if ``holder`` holds it now)."""

    @abstractmethod
    async def release_lease(self, name: str, holder: str) -> None: ...

    # ------------------------------------------------------------------ pool changes
    async def pool_changes(self, cursor: PoolCursor | None = None) -> PoolChanges:
        """What changed in the pool since ``cursor`` (None: the whole pool, ``full``):
        workers registered, re-registered, marked offline or whose heartbeat changed
        their status or routing state (current copies), ids no longer registered, and
        every heartbeat (worker id, server time) at or after the cursor. Pass the reply's
        ``cursor`` back next time. The work is proportional to the changes, not to the
        pool. This default re-reads the whole pool each time (correct, not cheap)."""
        return PoolChanges(PoolCursor(), await self.list_workers(), [], [], full=True)

    async def get_workers(self, worker_ids: Sequence[str]) -> list[Worker | None]:
        """The current copy of each worker (None where unknown), in ``worker_ids`` order.
        This default reads the whole pool."""
        by_id = {w.id: w for w in await self.list_workers()}
        return [by_id.get(worker_id) for worker_id in worker_ids]

    # ------------------------------------------------------------------ trust (issue 13)
    async def claim_starts(
        self, worker_id: str, starts: list[tuple[str, int, float]]
    ) -> list[bool]:
        """Claim each (task id, attempt, ttl_s) as started by ``worker_id``; True only the
        first time. The claim lives ``ttl_s`` (the envelope's remaining validity) in the
        backend, so a replayed envelope never starts twice, also across a worker restart.
        This default keeps claims in the process (backends that persist override it)."""
        seen: dict[tuple[str, str, int], float] = self.__dict__.setdefault("_started", {})
        now = time.time()
        out = []
        for task_id, attempt, ttl_s in starts:
            key = (worker_id, task_id, attempt)
            fresh = seen.get(key, 0.0) <= now
            if fresh:
                seen[key] = now + ttl_s
            out.append(fresh)
        if len(seen) > 100_000:  # drop the expired ones now and then
            for key in [k for k, until in seen.items() if until <= now]:
                del seen[key]
        return out

    async def refuse_worker(self, worker_id: str, reason: str) -> None:
        """Take ``worker_id`` out of routing (OFFLINE) and leave it the reason, which it
        reads with :meth:`worker_refusal` (a worker whose credential is wrong)."""
        self.__dict__.setdefault("_refusals", {})[worker_id] = reason
        await self.mark_offline(worker_id)

    async def worker_refusal(self, worker_id: str) -> str | None:
        """Why the orchestrator refused ``worker_id`` (None: it did not)."""
        refusals: dict[str, str] = self.__dict__.get("_refusals", {})
        return refusals.get(worker_id)

    # ------------------------------------------------------------------ clients (issue 11)
    async def offered_handlers(self) -> frozenset[str] | None:
        """Every handler name a worker has offered at registration, even one since gone
        (the set never shrinks), so a submit naming none of them can be refused with a
        did-you-mean. None: this backend does not keep the set (nothing is refused)."""
        return None
