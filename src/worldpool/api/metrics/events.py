"""Task and workflow events turned into counters and histograms.

:class:`EventMeter` applies one :class:`~worldpool.models.Event` at a time and remembers,
per task (bounded), what later events need: its handler, when it was queued and started,
and whether it is unschedulable now.

Event data the orchestrator may add (all optional): ``handler`` on task events,
``model``, ``input_tokens``, ``output_tokens``, ``tokens_used`` and ``cost_usd`` on
``task.succeeded`` / ``task.failed``, ``not_before`` (epoch s) on ``task.retrying``; on
every event that ends an attempt (succeeded, failed, retrying, failover, cancelled),
``attempt_worker``, ``attempt_cost_usd``, ``compute_cost_usd`` and ``token_cost_usd``:
cost is counted per attempt from those (failed and lost attempts are paid for too).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from worldpool.api.metrics.instruments import Instruments
from worldpool.models import Event, EventKind

_TRACK_MAX = 50_000  # tasks whose handler / timestamps we remember (bounded memory)
UNKNOWN = "unknown"


class Lru(OrderedDict[str, Any]):
    """A map that forgets its oldest entries beyond ``_TRACK_MAX``."""

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _TRACK_MAX:
            self.popitem(last=False)


class EventMeter:
    """Counts events into ``instruments``."""

    def __init__(self, instruments: Instruments) -> None:
        self._m = instruments
        self._handlers = Lru()  # task id -> handler name
        self._queued_at = Lru()  # task id -> when it last became pending
        self._started_at = Lru()  # task id -> when its current attempt started
        self._unschedulable: set[str] = set()

    @property
    def unschedulable(self) -> int:
        """How many tasks the last events left unschedulable."""
        return len(self._unschedulable)

    def handler_of(self, task_id: str | None) -> str | None:
        return self._handlers.get(task_id) if task_id else None

    def remember_handler(self, task_id: str, handler: str) -> None:
        self._handlers.put(task_id, handler)

    def observe(self, event: Event) -> None:
        """Apply one event. Unknown or incomplete events are counted and otherwise ignored."""
        kind = event.kind
        self._m.events.labels(kind.value).inc()
        if kind.value.startswith("workflow."):
            self._m.workflows.labels(kind.value.split(".", 1)[1]).inc()
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
            self._m.submitted.labels(handler).inc()
            self._queued_at.put(task, event.at)
        elif kind is EventKind.TASK_ROUTED:
            self._m.decisions.labels(handler, "placed").inc()
            self._unschedulable.discard(task)
        elif kind is EventKind.TASK_UNSCHEDULABLE:
            self._m.decisions.labels(handler, "unschedulable").inc()
            self._unschedulable.add(task)
        elif kind is EventKind.TASK_DISPATCHED:
            self._unschedulable.discard(task)
        elif kind is EventKind.TASK_STARTED:
            self._m.started.labels(handler, worker).inc()
            queued = self._queued_at.pop(task, None)
            if queued is not None:
                self._m.schedule_to_start.labels(handler).observe(max(0.0, event.at - queued))
            self._started_at.put(task, event.at)
        elif kind in (EventKind.TASK_SUCCEEDED, EventKind.TASK_FAILED):
            self._finish(event, handler, worker)
        elif kind is EventKind.TASK_RETRYING:
            self._m.retried.labels(handler, worker).inc()
            self._requeue(task, event)
        elif kind is EventKind.TASK_FAILOVER:
            self._m.failovers.labels(handler, worker).inc()
            self._requeue(task, event)
        elif kind is EventKind.TASK_TIMED_OUT:
            self._m.timed_out.labels(handler, worker).inc()
        elif kind is EventKind.TASK_CANCELLED:
            self._m.cancelled.labels(handler).inc()
            self._forget(task)
        elif kind is EventKind.TASK_DEAD_LETTERED:
            self._m.dead_lettered.labels(handler).inc()
            self._forget(task)

    def _charge(self, event: Event, handler: str, worker: str) -> None:
        """Count what the attempt this event ends cost, against the worker it ran on."""
        data = event.data
        charged = str(data.get("attempt_worker") or worker)
        total = _number(data.get("attempt_cost_usd"))
        if total > 0:
            self._m.cost.labels(handler, charged).inc(total)
        for part, key in (("compute", "compute_cost_usd"), ("tokens", "token_cost_usd")):
            amount = _number(data.get(key))
            if amount > 0:
                self._m.cost_parts.labels(handler, charged, part).inc(amount)

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
            self._m.run_time.labels(handler).observe(max(0.0, event.at - started))
        if event.kind is EventKind.TASK_SUCCEEDED:
            self._m.succeeded.labels(handler, worker).inc()
        elif event.data.get("final", True):  # a failure that will be retried says final=False
            self._m.failed.labels(handler, worker).inc()
        data = event.data
        cost = _number(data.get("cost_usd"))
        if cost > 0 and "attempt_cost_usd" not in data:  # counted per attempt otherwise
            self._m.cost.labels(handler, worker).inc(cost)
        tokens = _number(data.get("tokens_used"))
        model = str(data.get("model") or UNKNOWN)
        split = [(t, _number(data.get(f"{t}_tokens"))) for t in ("input", "output")]
        if any(n > 0 for _, n in split):
            for token_type, n in split:
                self._m.token_usage.labels("chat", model, token_type).observe(n)
            tokens = tokens or sum(n for _, n in split)
        elif tokens > 0:
            self._m.token_usage.labels("chat", model, "total").observe(tokens)
        if tokens > 0:
            self._m.tokens.labels(handler, worker).inc(tokens)
        self._forget(task)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
