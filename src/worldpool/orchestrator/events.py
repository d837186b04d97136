"""The events of task transitions, built without I/O: :func:`task_event` and
:func:`transition_events` (what a written transition says happened)."""

from __future__ import annotations

from worldpool.lifecycle import attempt_cost
from worldpool.models import Event, EventKind, JSONValue, TaskRecord, TaskStatus
from worldpool.unchecked import construct

_EVENT_FIELDS = frozenset(Event.model_fields) - {"seq"}


def task_event(
    kind: EventKind,
    record: TaskRecord,
    at: float,
    *,
    worker_id: str | None = None,
    message: str = "",
    data: dict[str, JSONValue] | None = None,
) -> Event:
    """An event about ``record`` stamped ``at``.

    Unvalidated: every value comes from the (validated) record or from our own code, and a
    task makes 3-4 events on the fast path. Events read back are validated."""
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


_HOLDING = frozenset({TaskStatus.DISPATCHED, TaskStatus.RUNNING})


def transition_events(before: TaskRecord, after: TaskRecord, worker: str, at: float) -> list[Event]:
    """The events of one written transition (appended by the caller, batched). A
    transition that ends an attempt says what that attempt cost (``attempt_cost_usd`` and
    its split), so the metrics charge every attempt, failed and lost ones too."""
    status = after.status
    charged = attempt_cost(after) if before.status in _HOLDING else {}
    if status is TaskStatus.RUNNING and before.status is not TaskStatus.RUNNING:
        return [task_event(EventKind.TASK_STARTED, after, at, worker_id=worker)]
    if status is TaskStatus.RUNNING:
        return [
            task_event(
                EventKind.TASK_PROGRESS,
                after,
                at,
                worker_id=worker,
                data={"progress": after.progress},
            )
        ]
    if status is TaskStatus.SUCCEEDED:
        return [
            task_event(
                EventKind.TASK_SUCCEEDED,
                after,
                at,
                worker_id=worker,
                data={**_usage(after), **charged},
            )
        ]
    if status in (TaskStatus.PENDING, TaskStatus.RETRYING):
        kind = EventKind.TASK_RETRYING if status is TaskStatus.RETRYING else EventKind.TASK_FAILOVER
        return [
            task_event(
                kind,
                after,
                at,
                worker_id=worker,
                message=after.error or "",
                data={"not_before": after.not_before, **charged},
            )
        ]
    if status is TaskStatus.FAILED:
        return [
            task_event(
                EventKind.TASK_FAILED,
                after,
                at,
                worker_id=worker,
                message=after.error or "",
                data={**_usage(after), **charged},
            ),
            task_event(EventKind.TASK_DEAD_LETTERED, after, at, message=after.error or ""),
        ]
    return []


def _usage(record: TaskRecord) -> dict[str, JSONValue]:
    return {
        "tokens_used": record.tokens_used,
        "cost_usd": record.cost_usd,
        "handler": record.spec.handler,
    }
