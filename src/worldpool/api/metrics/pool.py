"""The pool's gauges: workers (up, slots, heartbeat age), the queue and its depth per
capability, and dead letters by code.

:class:`PoolGauges` sets them from a pool snapshot, setting only what changed (a gauge set
is costly at 10,000 workers) and removing the series of workers that left.
"""

from __future__ import annotations

import contextlib
from collections import Counter as Counter_

from worldpool.api.metrics.events import Lru
from worldpool.api.metrics.instruments import Instruments
from worldpool.backends.base import Backend, DeadLetter
from worldpool.models import Worker, WorkerStatus

CAPABILITY_READS_MAX = 5_000
"""At most this many new pending tasks' records are read per poll (the rest next time)."""


class PoolGauges:
    """Sets the pool gauges of ``instruments``."""

    def __init__(self, instruments: Instruments) -> None:
        self._m = instruments
        self._capabilities = Lru()  # task id -> the capabilities it requires
        self._depth_labels: set[tuple[str]] = set()
        self._letter_codes: set[str] = set()
        self._workers: set[tuple[str, str]] = set()
        self._observed: dict[tuple[str, str], tuple[int, int, int]] = {}  # last values set

    def observe(
        self,
        workers: list[Worker],
        queue_length: int,
        *,
        now: float | None = None,
        pending_capabilities: list[frozenset[str]] | None = None,
        unschedulable: int = 0,
    ) -> None:
        """Set the pool gauges: per worker (and its heartbeat age when ``now`` is given,
        on the backend's clock), the queue, and its depth per capability when the pending
        tasks' ``pending_capabilities`` are given; ``unschedulable``: how many pending
        tasks no worker can take now."""
        m = self._m
        seen: set[tuple[str, str]] = set()
        observed = self._observed
        for w in workers:
            key = (w.id, w.profile.location.region)
            seen.add(key)
            up = 1 if w.state.status is WorkerStatus.ONLINE else 0
            if now is not None:  # the age moves every time: always set
                m.heartbeat_age.labels(*key).set(max(0.0, now - w.state.last_heartbeat))
            values = (up, w.state.running, w.profile.max_concurrency)
            if observed.get(key) == values:
                continue  # a gauge set is costly at 10,000 workers: only what changed
            observed[key] = values
            m.worker_up.labels(*key).set(up)
            m.slots_used.labels(*key).set(values[1])
            m.slots_total.labels(*key).set(values[2])
        if pending_capabilities is not None:
            depth = Counter_(c for caps in pending_capabilities for c in sorted(caps) or ["none"])
            for (label,) in self._depth_labels - {(c,) for c in depth}:
                m.queue_depth.remove(label)
            for capability, count in depth.items():
                m.queue_depth.labels(capability).set(count)
            self._depth_labels = {(c,) for c in depth}
        for key in self._workers - seen:  # workers that left the registry
            observed.pop(key, None)
            gauges = (m.worker_up, m.slots_used, m.slots_total, m.heartbeat_age)
            for gauge in gauges:
                with contextlib.suppress(KeyError):
                    gauge.remove(*key)
        self._workers = seen
        m.queue_length.set(queue_length)
        m.unschedulable.set(unschedulable)

    async def capabilities_of(self, backend: Backend, pending: list[str]) -> list[frozenset[str]]:
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
            self._m.dead_letters.labels(code).set(0)
        for code, count in counts.items():
            self._m.dead_letters.labels(code).set(count)
        self._letter_codes |= set(counts)
