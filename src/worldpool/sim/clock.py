"""The simulator's virtual clock and event queue.

Simulated time is seconds since the start of the run; ``epoch(t)`` turns it into the
epoch seconds the router sees (``RoutingContext.now``), so follow-the-sun and local hours
follow the simulated day. Events at the same instant run in the order they were scheduled
(a sequence number breaks ties), which keeps a run deterministic for a seed.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum

#: Monday 2024-03-04 00:00 UTC: a day without DST changes in the catalogue's zones.
DEFAULT_START_EPOCH = datetime(2024, 3, 4, tzinfo=UTC).timestamp()


class Ev(IntEnum):
    """Event kinds. Arrivals are not queued here (see engine: a sorted array is merged)."""

    FINISH = 1  # a task attempt ends on a worker: (task, attempt)
    RETRY = 2  # a failed task's backoff is over: (task, attempt)
    WAKE = 3  # a task's soft-affinity wait budget is over: (task, attempt)
    CRASH = 4  # a worker dies silently: (row, 0)
    DETECT = 5  # its missed heartbeats are noticed: (row, 0)
    RECOVER = 6  # it comes back empty: (row, 0)
    SAMPLE = 7  # record load by region: (0, 0)
    SYNC = 8  # the deciders' views refresh from what workers report: (0, 0)


@dataclass(slots=True)
class EventQueue:
    """A heap of ``(time, seq, kind, a, b)``; ``a``/``b`` are ints (ids, attempts)."""

    _heap: list[tuple[float, int, int, int, int]] = field(default_factory=list)
    _seq: int = 0

    def push(self, at: float, kind: Ev, a: int = 0, b: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, int(kind), a, b))

    def pop(self) -> tuple[float, Ev, int, int]:
        at, _, kind, a, b = heapq.heappop(self._heap)
        return at, Ev(kind), a, b

    def peek_time(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(slots=True)
class VirtualClock:
    """Simulated seconds since the run began, and their epoch equivalent."""

    start_epoch: float = DEFAULT_START_EPOCH
    now: float = 0.0

    def epoch(self, t: float | None = None) -> float:
        return self.start_epoch + (self.now if t is None else t)

    def advance(self, t: float) -> None:
        if t < self.now:
            raise RuntimeError(f"virtual clock cannot go back from {self.now} to {t}")
        self.now = t
