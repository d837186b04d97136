"""The :class:`Metrics` of one app: its instruments, and the loop that feeds them.

:meth:`Metrics.observe` turns one :class:`~worldpool.models.Event` into counter and
histogram updates (:mod:`.events`); :meth:`Metrics.observe_pool` sets the worker and queue
gauges from a pool snapshot (:mod:`.pool`); :meth:`Metrics.run` is the consumer loop that
does both against a backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest

from worldpool.api.metrics.events import EventMeter
from worldpool.api.metrics.instruments import DEAD_LETTER_SCAN, Instruments
from worldpool.api.metrics.pool import PoolGauges
from worldpool.backends.base import Backend, DeadLetter
from worldpool.event_log import cancel_checkpoint
from worldpool.models import Event, Worker

log = logging.getLogger("worldpool.api.metrics")

DEAD_LETTER_EVERY_POLLS = 10
"""Dead letters are counted every this many pool polls: they change rarely."""
READ_PACE_S = 0.2
"""How long the consumer lets events gather once it has caught up: metrics are scraped
every few seconds, and waking for every event would take CPU from the orchestrator beside
it on the fast path."""


class Metrics:
    """Every worldpool metric, in one registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.instruments = Instruments(self.registry)
        self._events = EventMeter(self.instruments)
        self._pool = PoolGauges(self.instruments)

    def handler_of(self, task_id: str | None) -> str | None:
        return self._events.handler_of(task_id)

    def remember_handler(self, task_id: str, handler: str) -> None:
        self._events.remember_handler(task_id, handler)

    def observe(self, event: Event) -> None:
        """Apply one event. Unknown or incomplete events are counted and otherwise ignored."""
        self._events.observe(event)

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
        self._pool.observe(
            workers,
            queue_length,
            now=now,
            pending_capabilities=pending_capabilities,
            unschedulable=self._events.unschedulable,
        )

    def observe_dead_letters(self, letters: list[DeadLetter]) -> None:
        self._pool.observe_dead_letters(letters)

    def render(self) -> bytes:
        return generate_latest(self.registry)

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
                        pending_capabilities=await self._pool.capabilities_of(backend, pending),
                    )
                    next_pool = loop.time() + poll_s
                if loop.time() >= next_letters:
                    self.observe_dead_letters(await backend.list_dead_letters(DEAD_LETTER_SCAN))
                    next_letters = loop.time() + poll_s * DEAD_LETTER_EVERY_POLLS
                events = await backend.read_events(after=cursor, limit=batch, block_s=poll_s)
                for event in events:
                    if (
                        event.task_id
                        and self.handler_of(event.task_id) is None
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
