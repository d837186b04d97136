"""A backlog's cost per pass: how deep a dispatch pass reads the pending queue, and which
of the tasks it read need a routing decision of their own (:class:`Backlog`)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from worldpool.models import TaskRecord
from worldpool.orchestrator.pool import PoolView
from worldpool.routing import Router

BUILTIN_FILTERS = "worldpool.routing.filters."
SHAPES_KEPT = 100_000
DEEP_READ_S = 0.25  # at least this often a pass reads the queue for every free slot

Shape = tuple[object, ...]


class Backlog:
    """What the passes learnt of the queue: the handlers it holds, each task's shape."""

    def __init__(self, pool: PoolView, router: Router) -> None:
        self._pool = pool
        self._shapes: dict[str, Shape] = {}  # task id -> its shape
        self._queued_handlers: set[str] = set()  # seen in the queue since the deep read
        self._deep_read_at = -1e9
        self._builtin_filters = all(
            type(f).__module__.startswith(BUILTIN_FILTERS) for f in router.filters
        )

    def seen(self, records: Iterable[TaskRecord | None]) -> None:
        """A pass read these queued records."""
        self._queued_handlers.update(r.spec.handler for r in records if r is not None)

    def useful_slots(self, free: int) -> int:
        """The free slots a pass reads the queue for: those of workers offering the
        handlers the queue was last seen to hold, and every ``DEEP_READ_S`` all of them
        (which finds the handlers further back). Free slots of workers no queued task can
        use (a big pool lacking the handler) would make each pass read, and look at, the
        whole queue."""
        now = time.monotonic()
        if not self._queued_handlers or now - self._deep_read_at >= DEEP_READ_S:
            self._deep_read_at = now
            self._queued_handlers = set()  # what this read finds
            return free
        return min(free, self._pool.free_slots_for(self._queued_handlers))

    def force_deep_read(self) -> None:
        """The next pass reads for every free slot."""
        self._deep_read_at = -1e9

    def shape(self, record: TaskRecord) -> Shape | None:
        """What the built-in filters decide a first attempt on, or None (an earlier
        attempt, an affinity, or a filter of a plugin's, which may read anything): once a
        task of a shape finds every fitting worker busy, the rest of its shape in the
        pass wait without a decision each (slots are only taken within a pass), so a
        backlog behind a large pool costs a decision per shape, not per task."""
        spec = record.spec
        if not self._builtin_filters or record.attempts or spec.affinity is not None:
            return None
        shape = self._shapes.get(spec.id)  # a task's spec never changes: worked out once
        if shape is None:
            if len(self._shapes) >= SHAPES_KEPT:
                self._shapes.clear()
            shape = self._shapes[spec.id] = (
                spec.handler,
                spec.capabilities,
                spec.requirements.model_dump_json(),
                spec.interactive,
                spec.heavy,
                spec.user_location,
            )
        return shape
