"""Prometheus metrics derived from the event log, so they mean the same on every backend.

A :class:`Metrics` owns its own ``CollectorRegistry`` (one per app, never the global one).
:meth:`Metrics.observe` turns one :class:`~worldpool.models.Event` into counter and
histogram updates; :meth:`Metrics.observe_pool` sets the worker and queue gauges from a
pool snapshot; :meth:`Metrics.run` is the consumer loop that does both against a backend.

Names follow Prometheus conventions (``worldpool_`` prefix, ``_total`` counters, base
units in seconds and USD); LLM token usage follows the OpenTelemetry GenAI semantic
conventions (``gen_ai.client.token.usage`` exported as ``gen_ai_client_token_usage``).

Event data the orchestrator may add (all optional): ``handler`` on task events,
``model``, ``input_tokens``, ``output_tokens``, ``tokens_used`` and ``cost_usd`` on
``task.succeeded`` / ``task.failed``, ``not_before`` (epoch s) on ``task.retrying``; on
every event that ends an attempt (succeeded, failed, retrying, failover, cancelled),
``attempt_worker``, ``attempt_cost_usd``, ``compute_cost_usd`` and ``token_cost_usd``:
cost is counted per attempt from those (failed and lost attempts are paid for too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Counter_
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from worldpool.backends.base import Backend, DeadLetter
from worldpool.event_log import cancel_checkpoint
from worldpool.models import Event, EventKind, Worker, WorkerStatus

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_TRACK_MAX = 50_000  # tasks whose handler / timestamps we remember (bounded memory)
UNKNOWN = "unknown"


class _Lru(OrderedDict[str, Any]):
    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _TRACK_MAX:
            self.popitem(last=False)


class Metrics:
    """Every worldpool metric, in one registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        hw = ["handler", "worker"]
        self.submitted = Counter(
            "worldpool_tasks_submitted", "Tasks submitted.", ["handler"], registry=r
        )
        self.started = Counter("worldpool_tasks_started", "Task attempts started.", hw, registry=r)
        self.succeeded = Counter("worldpool_tasks_succeeded", "Tasks succeeded.", hw, registry=r)
        self.failed = Counter("worldpool_tasks_failed", "Tasks failed for good.", hw, registry=r)
        self.retried = Counter("worldpool_tasks_retried", "Task retries scheduled.", hw, registry=r)
        self.cancelled = Counter(
            "worldpool_tasks_cancelled", "Tasks cancelled.", ["handler"], registry=r
        )
        self.timed_out = Counter("worldpool_tasks_timed_out", "Task timeouts.", hw, registry=r)
        self.dead_lettered = Counter(
            "worldpool_tasks_dead_lettered", "Tasks dead-lettered.", ["handler"], registry=r
        )
        self.failovers = Counter(
            "worldpool_failovers", "Tasks moved off a dead or drained worker.", hw, registry=r
        )
        self.decisions = Counter(
            "worldpool_routing_decisions",
            "Routing decisions by outcome (placed, unschedulable).",
            ["handler", "outcome"],
            registry=r,
        )
        self.workflows = Counter(
            "worldpool_workflows",
            "Workflows by event (submitted, succeeded, ...).",
            ["event"],
            registry=r,
        )
        self.schedule_to_start = Histogram(
            "worldpool_task_schedule_to_start_seconds",
            "From queued (submit or retry) to started on a worker.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.run_time = Histogram(
            "worldpool_task_run_seconds",
            "From started to finished, per attempt.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per LLM call (OpenTelemetry GenAI gen_ai.client.token.usage).",
            ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("worldpool_llm_tokens", "LLM tokens used.", hw, registry=r)
        self.cost = Counter("worldpool_cost_usd", "Cost of task attempts in USD.", hw, registry=r)
        self.cost_parts = Counter(
            "worldpool_cost_part_usd",
            "Cost of task attempts in USD by part: compute (worker time) or tokens.",
            [*hw, "part"],
            registry=r,
        )
        self.worker_up = Gauge(
            "worldpool_worker_up", "1 if the worker is online.", ["worker", "region"], registry=r
        )
        self.slots_used = Gauge(
            "worldpool_worker_slots_used", "Task slots in use.", ["worker", "region"], registry=r
        )
        self.slots_total = Gauge(
            "worldpool_worker_slots",
            "Task slots (max concurrency).",
            ["worker", "region"],
            registry=r,
        )
        self.queue_length = Gauge(
            "worldpool_queue_length", "Tasks waiting to be routed.", registry=r
        )
        self.unschedulable = Gauge(
            "worldpool_tasks_pending_unschedulable",
            "Pending tasks no worker can take right now.",
            registry=r,
        )
        self.events = Counter("worldpool_events", "Events consumed, by kind.", ["kind"], registry=r)
        self.heartbeat_age = Gauge(
            "worldpool_worker_heartbeat_age_seconds",
            "Seconds since the worker's last heartbeat (alert when it grows).",
            ["worker", "region"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "worldpool_queue_depth",
            "Tasks waiting to be routed, per capability they require ('none': no capability).",
            ["capability"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "worldpool_dead_letters",
            f"Dead letters stored, by code (the newest {DEAD_LETTER_SCAN} counted).",
            ["code"],
            registry=r,
        )
        self._capabilities = _Lru()  # task id -> the capabilities it requires
        self._handlers = _Lru()  # task id -> handler name
        self._queued_at = _Lru()  # task id -> when it last became pending
        self._started_at = _Lru()  # task id -> when its current attempt started
        self._unschedulable: set[str] = set()
        self._depth_labels: set[tuple[str]] = set()
        self._letter_codes: set[str] = set()
        self._workers: set[tuple[str, str]] = set()
        self._observed: dict[tuple[str, str], tuple[int, int, int]] = {}  # last values set

    # ------------------------------------------------------------------ events
    def handler_of(self, task_id: str | None) -> str | None:
        return self._handlers.get(task_id) if task_id else None

    def remember_handler(self, task_id: str, handler: str) -> None:
        self._handlers.put(task_id, handler)

    def observe(self, event: Event) -> None:
        """Apply one event. Unknown or incomplete events are counted and otherwise ignored."""
        kind = event.kind
        self.events.labels(kind.value).inc()
        if kind.value.startswith("workflow."):
            self.workflows.labels(kind.value.split(".", 1)[1]).inc()
            return
        task = event.task_id
        if task is None:
            return
        if isinstance(event.data.get("handler"), str):
            self.remember_handler(task, event.data["handler"])
        handler = self._handlers.get(task, UNKNOWN)
        worker = event.worker_id or UNKNOWN
        if "attempt_cost_usd" in event.data:
            self._charge(event, handler, worker)
        if kind is EventKind.TASK_SUBMITTED:
            self.submitted.labels(handler).inc()
            self._queued_at.put(task, event.at)
        elif kind is EventKind.TASK_ROUTED:
            self.decisions.labels(handler, "placed").inc()
            self._unschedulable.discard(task)
        elif kind is EventKind.TASK_UNSCHEDULABLE:
            self.decisions.labels(handler, "unschedulable").inc()
            self._unschedulable.add(task)
        elif kind is EventKind.TASK_DISPATCHED:
            self._unschedulable.discard(task)
        elif kind is EventKind.TASK_STARTED:
            self.started.labels(handler, worker).inc()
            queued = self._queued_at.pop(task, None)
            if queued is not None:
                self.schedule_to_start.labels(handler).observe(max(0.0, event.at - queued))
            self._started_at.put(task, event.at)
        elif kind in (EventKind.TASK_SUCCEEDED, EventKind.TASK_FAILED):
            self._finish(event, handler, worker)
        elif kind is EventKind.TASK_RETRYING:
            self.retried.labels(handler, worker).inc()
            self._requeue(task, event)
        elif kind is EventKind.TASK_FAILOVER:
            self.failovers.labels(handler, worker).inc()
            self._requeue(task, event)
        elif kind is EventKind.TASK_TIMED_OUT:
            self.timed_out.labels(handler, worker).inc()
        elif kind is EventKind.TASK_CANCELLED:
            self.cancelled.labels(handler).inc()
            self._forget(task)
        elif kind is EventKind.TASK_DEAD_LETTERED:
            self.dead_lettered.labels(handler).inc()
            self._forget(task)

    def _charge(self, event: Event, handler: str, worker: str) -> None:
        """Count what the attempt this event ends cost, against the worker it ran on."""
        data = event.data
        charged = str(data.get("attempt_worker") or worker)
        total = _number(data.get("attempt_cost_usd"))
        if total > 0:
            self.cost.labels(handler, charged).inc(total)
        for part, key in (("compute", "compute_cost_usd"), ("tokens", "token_cost_usd")):
            amount = _number(data.get(key))
            if amount > 0:
                self.cost_parts.labels(handler, charged, part).inc(amount)

    def _requeue(self, task: str, event: Event) -> None:
        not_before = _number(event.data.get("not_before"))  # a retry waits out its backoff
        self._queued_at.put(task, max(event.at, not_before))
        self._started_at.pop(task, None)

    def _forget(self, task: str) -> None:
        self._unschedulable.discard(task)
        self._queued_at.pop(task, None)
        self._started_at.pop(task, None)

    def _finish(self, event: Event, handler: str, worker: str) -> None:
        task = event.task_id or ""
        started = self._started_at.pop(task, None)
        if started is not None:
            self.run_time.labels(handler).observe(max(0.0, event.at - started))
        if event.kind is EventKind.TASK_SUCCEEDED:
            self.succeeded.labels(handler, worker).inc()
        elif event.data.get("final", True):  # a failure that will be retried says final=False
            self.failed.labels(handler, worker).inc()
        data = event.data
        cost = _number(data.get("cost_usd"))
        if cost > 0 and "attempt_cost_usd" not in data:  # counted per attempt otherwise
            self.cost.labels(handler, worker).inc(cost)
        tokens = _number(data.get("tokens_used"))
        model = str(data.get("model") or UNKNOWN)
        split = [(t, _number(data.get(f"{t}_tokens"))) for t in ("input", "output")]
        if any(n > 0 for _, n in split):
            for token_type, n in split:
                self.token_usage.labels("chat", model, token_type).observe(n)
            tokens = tokens or sum(n for _, n in split)
        elif tokens > 0:
            self.token_usage.labels("chat", model, "total").observe(tokens)
        if tokens > 0:
            self.tokens.labels(handler, worker).inc(tokens)
        self._forget(task)

    # ------------------------------------------------------------------ pool gauges
    def observe_pool(
        self,
        workers: list[Worker],
        queue_length: int,
        *,
        now: float | None = None,
        pending_capabilities: list[frozenset[str]] | None = None,
    ) -> None:
        """Set the pool gauges: per worker (and its heartbeat age when ``now`` is given,
        on the backend's clock), the queue, and its depth per capability when the pending
        tasks' ``pending_capabilities`` are given."""
        seen: set[tuple[str, str]] = set()
        observed = self._observed
        for w in workers:
            key = (w.id, w.profile.location.region)
            seen.add(key)
            up = 1 if w.state.status is WorkerStatus.ONLINE else 0
            if now is not None:  # the age moves every time: always set
                self.heartbeat_age.labels(*key).set(max(0.0, now - w.state.last_heartbeat))
            values = (up, w.state.running, w.profile.max_concurrency)
            if observed.get(key) == values:
                continue  # a gauge set is costly at 10,000 workers: only what changed
            observed[key] = values
            self.worker_up.labels(*key).set(up)
            self.slots_used.labels(*key).set(values[1])
            self.slots_total.labels(*key).set(values[2])
        if pending_capabilities is not None:
            depth = Counter_(c for caps in pending_capabilities for c in sorted(caps) or ["none"])
            for (label,) in self._depth_labels - {(c,) for c in depth}:
                self.queue_depth.remove(label)
            for capability, count in depth.items():
                self.queue_depth.labels(capability).set(count)
            self._depth_labels = {(c,) for c in depth}
        for key in self._workers - seen:  # workers that left the registry
            observed.pop(key, None)
            gauges = (self.worker_up, self.slots_used, self.slots_total, self.heartbeat_age)
            for gauge in gauges:
                with contextlib.suppress(KeyError):
                    gauge.remove(*key)
        self._workers = seen
        self.queue_length.set(queue_length)
        self.unschedulable.set(len(self._unschedulable))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ consumer loop
    async def run(
        self,
        backend: Backend,
        *,
        after: str | None = None,
        poll_s: float = 1.0,
        batch: int = 500,
        pool: Callable[[], list[Worker] | None] | None = None,
    ) -> None:
        """Follow the event log from ``after`` (None: the oldest kept) until cancelled,
        refreshing the pool gauges about every ``poll_s``, from ``pool()`` when given (the
        orchestrator's snapshot, which follows the pool by its changes) rather than a read
        of the whole pool. Backend errors are logged and retried, never raised: metrics
        must not take the API down."""
        cursor = after
        loop = asyncio.get_running_loop()
        next_pool = next_letters = 0.0
        while True:
            cancel_checkpoint()
            try:
                if loop.time() >= next_pool:
                    workers = pool() if pool is not None else None  # a running snapshot
                    if workers is None:
                        workers = await backend.list_workers()
                    pending = await backend.list_pending(limit=100_000)
                    self.observe_pool(
                        workers,
                        len(pending),
                        now=await backend.now(),
                        pending_capabilities=await self._capabilities_of(backend, pending),
                    )
                    next_pool = loop.time() + poll_s
                if loop.time() >= next_letters:
                    self.observe_dead_letters(await backend.list_dead_letters(DEAD_LETTER_SCAN))
                    next_letters = loop.time() + poll_s * DEAD_LETTER_EVERY_POLLS
                events = await backend.read_events(after=cursor, limit=batch, block_s=poll_s)
                for event in events:
                    if (
                        event.task_id
                        and event.task_id not in self._handlers
                        and not isinstance(event.data.get("handler"), str)
                    ):
                        record = await backend.get_task(event.task_id)  # an older writer's
                        if record is not None:
                            self.remember_handler(event.task_id, record.spec.handler)
                    self.observe(event)
                    cursor = event.seq or cursor
                if 0 < len(events) < batch:  # caught up: gather a batch, not one per event
                    await asyncio.sleep(READ_PACE_S)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("metrics: reading events failed; retrying in %.1fs", poll_s)
                await asyncio.sleep(poll_s)

    async def _capabilities_of(self, backend: Backend, pending: list[str]) -> list[frozenset[str]]:
        """The capabilities each pending task requires, read once per task (cached)."""
        unknown = [t for t in pending if t not in self._capabilities][:CAPABILITY_READS_MAX]
        if unknown:
            for task_id, record in zip(unknown, await backend.get_tasks(unknown), strict=True):
                caps = frozenset(record.spec.capabilities) if record is not None else frozenset()
                self._capabilities.put(task_id, caps)
        return [self._capabilities[t] for t in pending if t in self._capabilities]

    def observe_dead_letters(self, letters: list[DeadLetter]) -> None:
        counts = Counter_(letter.code for letter in letters)
        for code in self._letter_codes - set(counts):
            self.dead_letters.labels(code).set(0)
        for code, count in counts.items():
            self.dead_letters.labels(code).set(count)
        self._letter_codes |= set(counts)


DEAD_LETTER_SCAN = 10_000
"""The dead-letter gauge counts at most this many of the newest letters."""
DEAD_LETTER_EVERY_POLLS = 10
"""Dead letters are counted every this many pool polls: they change rarely."""
CAPABILITY_READS_MAX = 5_000
"""At most this many new pending tasks' records are read per poll (the rest next time)."""
READ_PACE_S = 0.2
"""How long the consumer lets events gather once it has caught up: metrics are scraped
every few seconds, and waking for every event would take CPU from the orchestrator beside
it on the fast path."""


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
