"""The values the Backend contract (:mod:`worldpool.backends.base`) passes in and out:
deliveries, dispatches, outcomes, pages of events, replies and queued ids, effect claims,
epochs, dead letters and pool changes. Plain frozen dataclasses, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from worldpool.models import Event, JSONValue, TaskRecord, TaskResult, TaskStatus, Worker


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message taken from a worker's queue: raw bytes, validated by the worker.

    ``task_id`` is the id the slot was reserved under, so a worker can give back the slot
    of a delivery it rejects without trusting the bytes."""

    id: str
    data: bytes
    task_id: str = ""


@dataclass(frozen=True, slots=True)
class ResultMessage:
    """One worker report taken from the results queue; ack it once applied."""

    id: str
    result: TaskResult


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One task for :meth:`Backend.dispatch_many`: the routed record (stored only if the
    stored version is ``expect_version``), the worker, the envelope and the
    TASK_DISPATCHED event (``at`` set by the caller)."""

    record: TaskRecord
    expect_version: int
    worker_id: str
    envelope: bytes
    event: Event


@dataclass(frozen=True, slots=True)
class NewTask:
    """One submit for :meth:`Backend.create_tasks`: the new ``record`` (queued) and its
    TASK_SUBMITTED ``event``; with ``dispatch``, the same task already routed
    (``dispatch.expect_version`` is 1, the created record's version), to be sent in the
    same step if its worker can take it: a submit and its dispatch in one round trip.
    ``only_if_queue_empty``: send it only if the pending queue is empty at that moment (a
    client routing its own submits passes nothing by), else queue it."""

    record: TaskRecord
    event: Event
    dispatch: Dispatch | None = None
    only_if_queue_empty: bool = False


@dataclass(frozen=True, slots=True)
class DispatchOutcome:
    """What :meth:`Backend.dispatch_many` did with one :class:`Dispatch`: ``sent`` (with the
    delivery id), or nothing changed because the compare failed (``conflict``) or the
    reservation was refused (``reason``, as a ReservationError would say).

    For :meth:`Backend.create_tasks`: ``conflict`` means a task with the id existed and
    nothing changed; otherwise the task was created and either ``sent`` or queued (with
    ``reason`` if its dispatch was refused)."""

    sent: bool
    delivery_id: str = ""
    conflict: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EventPage:
    """What :meth:`Backend.read_events_of` read: the events of the kinds asked for, and the
    seq to read on from (None: nothing was ever read)."""

    events: list[Event]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class QueuedPage:
    """What :meth:`Backend.read_queued` read: ids of tasks their create queued (or, from
    a backend without that signal, of every task created), and the cursor to read on from."""

    task_ids: list[str]
    cursor: str | None


class PushedRecord:
    """A task's final record as pushed to its client: id and version known at once, the
    record decoded when first asked for. A client that submits a burst holds thousands of
    these until its handles take them; undecoded, each is one object for the garbage
    collector to walk instead of the hundreds of a decoded record (full collections over
    held records took a third of a busy client's CPU)."""

    __slots__ = ("_data", "_record", "task_id", "version")

    def __init__(
        self,
        task_id: str,
        version: int,
        data: bytes | None = None,
        record: TaskRecord | None = None,
    ) -> None:
        self.task_id = task_id
        self.version = version
        self._data = data
        self._record = record

    def succeeded_value(self) -> tuple[bool, JSONValue]:
        """``(True, value)`` if the task succeeded with its value inline, read from the
        pushed JSON without decoding the whole record (what ``handle.result()`` needs);
        ``(False, None)`` otherwise, or if the JSON does not say so plainly."""
        if self._record is not None:
            record = self._record
            if record.status is TaskStatus.SUCCEEDED and record.result_ref is None:
                return True, record.result
            return False, None
        try:
            doc = orjson.loads(self._data or b"")
        except orjson.JSONDecodeError:
            return False, None
        plain = isinstance(doc, dict) and doc.get("result_ref") is None
        if plain and doc.get("status") == TaskStatus.SUCCEEDED.value:
            return True, doc.get("result")
        return False, None

    def record(self) -> TaskRecord:
        """The record (pydantic's ValidationError if the pushed JSON is not a record)."""
        if self._record is None:
            record = TaskRecord.model_validate_json(self._data or b"")
            record.version = self.version
            self._record, self._data = record, None
        return self._record


@dataclass(frozen=True, slots=True)
class ReplyPage:
    """What :meth:`Backend.read_replies` read: final task records pushed to one client, and
    the cursor to read on from (None: nothing was ever read)."""

    replies: list[PushedRecord]
    cursor: str | None

    @property
    def records(self) -> list[TaskRecord]:
        """Every pushed record, decoded."""
        return [pushed.record() for pushed in self.replies]


@dataclass(frozen=True, slots=True)
class EffectClaim:
    """The effect ledger's answer to an attempt about to apply an effect: ``"run"`` (claimed
    for it: apply now), ``"done"`` (applied already; ``value`` is what it returned, JSON) or
    ``"fenced"`` (the attempt no longer owns its task: it must not apply anything)."""

    state: str
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class EpochMark:
    """The deployment epoch: ``epoch`` (an id written at the first start), ``mark`` (one
    more per :meth:`Backend.touch_epoch`: a backend restored from an older copy answers a
    smaller one), and, when the epoch was made again after the state was lost, the epoch
    lost (``lost_from``) and when (``lost_at``, server time)."""

    epoch: str
    mark: int
    created: bool = False
    lost_from: str | None = None
    lost_at: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    worker_id: str
    code: str
    reason: str
    data: bytes
    at: float


@dataclass(frozen=True, slots=True)
class PoolCursor:
    """How far a reader of :meth:`Backend.pool_changes` got (opaque to the reader)."""

    changed: float = 0.0  # sequence number of the last change read
    heard: float = 0.0  # server time of the last heartbeat read


@dataclass(slots=True)
class PoolChanges:
    """One answer of :meth:`Backend.pool_changes`."""

    cursor: PoolCursor
    workers: list[Worker]  # full: the whole pool; else the workers that changed
    gone: list[str]  # ids no longer registered (empty when full)
    heartbeats: list[tuple[str, float]]  # (worker id, server time), oldest first
    full: bool = False
