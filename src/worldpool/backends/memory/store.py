"""The memory backend's state: plain containers and a wake-up signal, no contract logic.

:class:`MemoryStore` is everything one in-process deployment holds; the contract's
operations live in :mod:`.backend` (and :mod:`.rules`, :mod:`.results`, :mod:`.pool`),
which only mutate these containers between awaits (so every step is atomic on one event
loop).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pydantic
from pydantic_core import PydanticSerializationError

from worldpool.backends.base import DeadLetter, Delivery, EpochMark, ResultMessage
from worldpool.errors import ValidationError
from worldpool.models import Event, TaskRecord, WorkerProfile, WorkerState, WorkflowRecord

M = TypeVar("M", bound=pydantic.BaseModel)


def clone(model: M) -> M:
    """An independent copy made through JSON, the way a networked backend stores it.

    Several times faster than ``model_copy(deep=True)`` for our models, and a value that
    could not survive Redis (a set in a payload, a tuple becoming a list) behaves the same
    here, so the test double does not hide such bugs.
    """
    try:
        return type(model).model_validate_json(model.model_dump_json())
    except (PydanticSerializationError, pydantic.ValidationError) as exc:
        raise ValidationError(
            f"cannot store this {type(model).__name__}: it does not survive JSON ({exc}); "
            "payloads, results and metadata must be JSON values"
        ) from None


class Signal:
    """Wakes every waiter on :meth:`notify`.

    Each generation gets a fresh :class:`asyncio.Event`, and a waiter checks its predicate
    and picks up the current event with no ``await`` in between, so a notify can never
    slip between the check and the wait.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def _current(self) -> asyncio.Event:
        # An Event binds to the loop that first waits on it; a backend reused under a new
        # loop (two asyncio.run calls) starts a fresh generation instead of failing.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._event = asyncio.Event()
        return self._event

    async def wait_until(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``ready()`` holds or ``timeout_s`` (real seconds) passed."""
        if ready() or timeout_s <= 0:
            return ready()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not ready():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:  # asyncio.timeout, unlike wait_for on 3.11, never swallows a cancel
                async with asyncio.timeout(remaining):
                    await self._current().wait()
            except TimeoutError:
                return ready()
        return True


@dataclass
class WorkerQueue:
    """One worker's delivery queue: never-taken messages, then taken-but-unacked ones."""

    new: deque[Delivery] = field(default_factory=deque)
    pending: dict[str, Delivery] = field(default_factory=dict)
    signal: Signal = field(default_factory=Signal)


@dataclass
class EventLog:
    """The capped event log. Seq ``n`` sits at ``items[n - first]``, so a cursor is an index.

    At most ``cap`` events are visible; the list is trimmed in batches (a quarter of the
    cap) so appending stays O(1) amortised instead of shifting the list every time.
    """

    cap: int
    items: list[Event] = field(default_factory=list)
    first: int = 1
    signal: Signal = field(default_factory=Signal)

    def append(self, event: Event) -> Event:
        stored = clone(event.model_copy(update={"seq": f"{self.first + len(self.items):020d}"}))
        self.items.append(stored)
        if len(self.items) > self.cap + self.cap // 4:
            drop = len(self.items) - self.cap
            del self.items[:drop]
            self.first += drop
        self.signal.notify()
        return stored

    def index_after(self, after: str | None) -> int:
        oldest = max(0, len(self.items) - self.cap)
        if after is None:
            return oldest
        try:
            seq = int(after)
        except ValueError:
            raise ValidationError(
                f"event cursor {after!r} is not a seq of the memory backend; pass the seq "
                "of an event read from it, or None to read from the oldest kept"
            ) from None
        return max(oldest, seq - self.first + 1)

    def read(self, after: str | None, limit: int) -> list[Event]:
        start = self.index_after(after)
        return [clone(e) for e in self.items[start : start + limit]]


@dataclass
class ReplyBox:
    """One client's pushed final records: (seq, record), oldest first, capped."""

    cap: int = 10_000
    items: list[tuple[int, TaskRecord]] = field(default_factory=list)
    signal: Signal = field(default_factory=Signal)

    def push(self, seq: int, record: TaskRecord) -> None:
        self.items.append((seq, clone(record)))
        if len(self.items) > self.cap + self.cap // 4:
            del self.items[: len(self.items) - self.cap]
        self.signal.notify()

    def after(self, seq: int, limit: int) -> list[tuple[int, TaskRecord]]:
        return [(n, clone(r)) for n, r in self.items if n > seq][:limit]


@dataclass
class MemoryStore:
    """All state of one memory deployment; shared by every client made by ``reconnect``."""

    event_log_max: int
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    profiles: dict[str, WorkerProfile] = field(default_factory=dict)
    states: dict[str, WorkerState] = field(default_factory=dict)
    slots: dict[str, set[str]] = field(default_factory=dict)
    queues: dict[str, WorkerQueue] = field(default_factory=dict)
    results_new: deque[ResultMessage] = field(default_factory=deque)
    results_pending: dict[str, tuple[str, ResultMessage]] = field(default_factory=dict)
    results_taken_at: dict[str, float] = field(default_factory=dict)
    results_signal: Signal = field(default_factory=Signal)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    deadlines: dict[str, float] = field(default_factory=dict)  # task id -> timeout deadline
    workflows: dict[str, WorkflowRecord] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (-priority, age)
    epoch: EpochMark | None = None
    effects: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)
    """effect key -> (claimed | done, value): the once-per-key ledger (kept for the run)."""
    ages: dict[str, int] = field(default_factory=dict)
    """task id -> its first-put order: a re-queued (failed-over, retried) task keeps its age."""
    blobs: dict[str, tuple[bytes, float | None]] = field(default_factory=dict)
    blob_expiry: list[tuple[float, str]] = field(default_factory=list)  # heap
    events: EventLog = field(init=False)
    dead_letters: deque[DeadLetter] = field(default_factory=deque)
    leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    pool_seq: int = 0
    pool_changed: OrderedDict[str, int] = field(default_factory=OrderedDict)
    """worker id -> sequence number of its latest change, oldest change first."""
    heard: OrderedDict[str, float] = field(default_factory=OrderedDict)
    """worker id -> time of its latest heartbeat, oldest first."""
    replies: dict[str, ReplyBox] = field(default_factory=dict)
    """client id -> the final records pushed to it (TaskSpec.reply_to)."""
    offered: set[str] = field(default_factory=set)
    """Every handler name a worker offered at registration (never shrinks)."""

    def pool_change(self, worker_id: str) -> None:
        """``worker_id`` registered, went offline, or changed status or routing state."""
        self.pool_seq += 1
        self.pool_changed[worker_id] = self.pool_seq
        self.pool_changed.move_to_end(worker_id)

    def heard_from(self, worker_id: str, at: float) -> None:
        self.heard[worker_id] = at
        self.heard.move_to_end(worker_id)

    def __post_init__(self) -> None:
        self.events = EventLog(cap=self.event_log_max)

    def next_id(self) -> str:
        """Ids that sort in creation order as strings (``"%020d"``)."""
        return f"{next(self.ids):020d}"

    def purge_expired_blobs(self, now: float) -> None:
        """Drop blobs whose TTL passed, oldest deadline first (heap entries may be stale)."""
        heap = self.blob_expiry
        while heap and heap[0][0] <= now:
            expires, digest = heapq.heappop(heap)
            entry = self.blobs.get(digest)
            if entry is not None and entry[1] == expires:
                del self.blobs[digest]

    def queue(self, worker_id: str) -> WorkerQueue:
        return self.queues.setdefault(worker_id, WorkerQueue())
