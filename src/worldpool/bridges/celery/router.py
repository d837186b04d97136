"""Celery apps route through worldpool: :class:`WorldpoolRouter`, a router for
``task_routes``.

For each ``.delay()`` / ``apply_async()`` / ``send_task()`` it builds the task worldpool
would see (handler = the Celery task name; capabilities, requirements, user location and
weights from the call's ``worldpool`` header, the task's ``worldpool`` attribute or the
router's defaults), runs the real :class:`~worldpool.routing.Router` over the Celery
fleets worldpool knows (bridge workers, which advertise their queue under the
``celery_queue`` label) and answers that fleet's queue. No fleet fits: ``None``, so Celery
asks the next router in ``task_routes`` (or uses its default queue).

The default policy is worldpool's without the capacity filter (a queue buffers: a
busy fleet is still a place to send to, just a less preferred one).

The pool is read from the backend by a background thread at most every ``refresh_s``;
between reads the router counts the tasks it placed against each fleet, so a burst
spreads by load instead of piling onto one queue. Nothing on the caller's path waits for
Redis once the first snapshot is in. Each decision is recorded as a ``task.routed`` (or
``task.unschedulable``) event keyed by the Celery task id, carrying the whole
:class:`~worldpool.models.RoutingDecision`; :meth:`WorldpoolRouter.explain` returns the
recent ones from memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from worldpool import geo
from worldpool.backends import backend_from_url
from worldpool.backends.base import Backend
from worldpool.bridges.celery.app import QUEUE_LABEL
from worldpool.bridges.celery.bridge import HEADER
from worldpool.config import Settings
from worldpool.errors import ConfigError
from worldpool.models import Event, EventKind, RoutingDecision, TaskSpec, WorkerStatus
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy

log = logging.getLogger("worldpool.bridges.celery")

# What a call may say about itself: the parts of a TaskSpec that are about placement.
HINT_FIELDS = frozenset(
    {"capabilities", "requirements", "user_location", "interactive", "heavy", "weights"}
)
FIRST_READ_TIMEOUT_S = 10.0
KEEP_DECISIONS = 1000


def queueing_policy() -> RoutingPolicy:
    """The default policy without the capacity filter: a Celery queue buffers, so a busy
    fleet is still a place to send to (the load scorer still prefers the idler one)."""
    default = RoutingPolicy()
    return RoutingPolicy(filters=tuple(f for f in default.filters if f != "capacity"))


class WorldpoolRouter:
    """A Celery router placing tasks on the best Celery fleet in a worldpool pool."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        policy: RoutingPolicy | None = None,
        refresh_s: float = 1.0,
        user_location: str | None = None,
        record: bool = True,
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()  # WORLDPOOL_NAMESPACE, ...
        url = redis_url or self.settings.redis_url
        if backend is None and url is None:
            raise ConfigError("WorldpoolRouter needs the pool's redis_url (or WORLDPOOL_REDIS_URL)")
        self.router = Router(policy or queueing_policy())
        self.refresh_s = refresh_s
        self.defaults: dict[str, Any] = {"user_location": user_location} if user_location else {}
        self.record = record
        self._snapshot: PoolSnapshot | None = None
        self._queues: dict[str, str] = {}  # worker id -> its Celery queue
        self._read_at = float("-inf")  # monotonic: when the last read started (never)
        self._snapshot_at = 0.0  # epoch seconds: when the snapshot in use was read
        self._reading: Future[None] | None = None
        self._lock = threading.Lock()  # decide() and the local load counts
        self._pending = threading.local()  # the decision of the call being published
        self._decisions: OrderedDict[str, RoutingDecision] = OrderedDict()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="worldpool-celery-router", daemon=True
        )
        self._thread.start()
        self._backend = backend or backend_from_url(url, self.settings)
        if record:
            from celery.signals import before_task_publish

            before_task_publish.connect(self._on_publish, weak=False)

    # ------------------------------------------------------------------ Celery's side
    def __call__(
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        options: Mapping[str, Any] | None = None,
        task: Any = None,
        **_: Any,
    ) -> dict[str, str] | None:
        """Celery's router signature: the route of task ``name``, or None."""
        decision, queue = self.decide(name, options or {}, task)
        if self.record:
            self._pending.value = (name, decision, queue)
        return None if queue is None else {"queue": queue}

    def decide(
        self, name: str, options: Mapping[str, Any] | None = None, task: Any = None
    ) -> tuple[RoutingDecision, str | None]:
        """The decision for one call of ``name`` and the queue it picks (None: no fleet)."""
        spec = TaskSpec(id="celery-call", handler=name, **self._hints(options or {}, task))
        snapshot, read_at = self._current()
        ctx = RoutingContext(
            task=spec,
            now=read_at,  # heartbeat ages as of the read: the snapshot does not age them
            user_location=geo.try_location(spec.user_location) if spec.user_location else None,
            heartbeat_timeout_s=self.settings.offline_after_s + self.refresh_s,
        )
        with self._lock:
            decision = self.router.decide(ctx, snapshot)
            if decision.winner is None:
                return decision, None
            worker = snapshot.workers[snapshot.row_of(decision.winner)]
            worker.state.running += 1  # until the next read: spread a burst by load
            snapshot.update_state(worker.state)
            return decision, self._queues[decision.winner]

    def explain(self, celery_task_id: str) -> RoutingDecision | None:
        """The decision recorded for a recent call (its Celery task id)."""
        with self._lock:
            return self._decisions.get(celery_task_id)

    def close(self) -> None:
        """Stop recording, close the backend and the background thread."""
        if self.record:
            from celery.signals import before_task_publish

            before_task_publish.disconnect(self._on_publish)
        asyncio.run_coroutine_threadsafe(self._backend.aclose(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _hints(self, options: Mapping[str, Any], task: Any) -> dict[str, Any]:
        hints: dict[str, Any] = dict(self.defaults)
        headers = options.get("headers") or {}
        for source in (getattr(task, HEADER, None), headers.get(HEADER), options.get(HEADER)):
            if isinstance(source, Mapping):
                hints.update({k: v for k, v in source.items() if k in HINT_FIELDS})
        return hints

    def _on_publish(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        """``before_task_publish``: the Celery task id is known now; record the decision."""
        pending = getattr(self._pending, "value", None)
        self._pending.value = None
        if pending is None or not isinstance(headers, Mapping) or "id" not in headers:
            return
        name, decision, queue = pending
        if name != sender and name != headers.get("task"):
            return
        celery_id = str(headers["id"])
        decision = decision.model_copy(update={"task_id": celery_id})
        with self._lock:
            self._decisions[celery_id] = decision
            while len(self._decisions) > KEEP_DECISIONS:
                self._decisions.popitem(last=False)
        event = Event(
            kind=EventKind.TASK_ROUTED if queue else EventKind.TASK_UNSCHEDULABLE,
            task_id=celery_id,
            worker_id=decision.winner,
            message=f"celery queue {queue}" if queue else "; ".join(decision.reasons),
            data={
                "source": "celery",
                "handler": name,
                "queue": queue,
                "decision": decision.model_dump(mode="json"),
            },
        )
        asyncio.run_coroutine_threadsafe(self._append(event), self._loop)

    async def _append(self, event: Event) -> None:
        try:
            await self._backend.append_event(event)
        except Exception as exc:  # recording never fails a Celery call
            log.warning("recording the Celery routing decision failed: %s", exc)

    # ------------------------------------------------------------------ the pool
    def _current(self) -> tuple[PoolSnapshot, float]:
        """The cached snapshot; a re-read starts in the background when it is due."""
        now = time.monotonic()
        with self._lock:
            due = now - self._read_at > self.refresh_s
            if due and (self._reading is None or self._reading.done()):
                self._read_at = now
                self._reading = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
            first, snapshot = self._reading, self._snapshot
        if snapshot is None:  # the very first call waits for the first read
            assert first is not None
            first.result(FIRST_READ_TIMEOUT_S)
            snapshot = self._snapshot
            assert snapshot is not None
        return snapshot, self._snapshot_at

    async def _read(self) -> None:
        try:
            workers = await self._backend.list_workers()
        except Exception as exc:
            log.warning("reading the worldpool pool failed: %s", exc)
            if self._snapshot is None:
                raise
            return
        fleets = [
            w
            for w in workers
            if QUEUE_LABEL in w.profile.labels and w.state.status is WorkerStatus.ONLINE
        ]
        snapshot = PoolSnapshot(fleets)
        queues = {w.id: w.profile.labels[QUEUE_LABEL] for w in fleets}
        with self._lock:  # swapped whole: a decision never sees half a read
            self._snapshot, self._queues, self._snapshot_at = snapshot, queues, time.time()
