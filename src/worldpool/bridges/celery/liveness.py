"""Is anyone still running it? :class:`FleetMonitor` watches the Celery workers that
consume a bridge's queue, so that a Celery worker that dies shows as a failed attempt,
not a hang.

The bridge tells it where each task runs (the ``STARTED`` state's hostname, which Celery
records when the app sets ``task_track_started``). While tasks are in flight the monitor
asks the fleet every ``interval_s`` who consumes the queue (one ``active_queues``
broadcast, in a thread, for the whole bridge). A task whose worker is missing from
``misses`` answered rounds in a row is lost; so is every task in flight when no worker has
answered for the queue for ``no_consumer_s``. A round nobody answers proves nothing about
one worker (replies get lost; the broker may be away), so it only counts towards the
latter. A worker with the solo pool cannot answer while it runs a task; use prefork or
threads for this check (the execution timeout bounds the wait anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("worldpool.bridges.celery")


@dataclass
class _Watch:
    lost: asyncio.Future[str]
    seen_on: str | None = None  # the Celery worker last seen running it
    misses: int = 0  # checks in a row where that worker did not answer


@dataclass
class FleetMonitor:
    """Tells waiting attempts that their Celery task was lost."""

    app: Any
    queue: str
    interval_s: float = 2.0
    inspect_timeout_s: float = 1.0
    misses: int = 2
    no_consumer_s: float = 30.0
    _watches: dict[str, _Watch] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _consumers_seen_at: float = field(default_factory=time.monotonic)

    def watch(self, celery_id: str) -> asyncio.Future[str]:
        """A future set to the reason when ``celery_id`` is found lost."""
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._watches[celery_id] = _Watch(lost)
        if self._task is None or self._task.done():
            self._consumers_seen_at = time.monotonic()
            self._task = asyncio.create_task(self._loop(), name=f"celery-liveness-{self.queue}")
        return lost

    def started(self, celery_id: str, hostname: str) -> None:
        """``celery_id`` runs on Celery worker ``hostname`` (from its STARTED state)."""
        watch = self._watches.get(celery_id)
        if watch is not None and watch.seen_on != hostname:
            watch.seen_on, watch.misses = hostname, 0

    def unwatch(self, celery_id: str) -> None:
        self._watches.pop(celery_id, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while self._watches:
            await asyncio.sleep(self.interval_s)
            try:
                consumers = await asyncio.to_thread(self._ask)
            except Exception as exc:  # the broker is down: the deadline still bounds the wait
                log.warning("cannot inspect the Celery fleet of %s: %s", self.queue, exc)
                continue
            self.observe(consumers, time.monotonic())

    def _ask(self) -> set[str]:
        inspect = self.app.control.inspect(timeout=self.inspect_timeout_s)
        queues = inspect.active_queues() or {}
        return {name for name, qs in queues.items() if any(q.get("name") == self.queue for q in qs)}

    def observe(self, consumers: set[str], now: float) -> None:
        """One round's answers: the Celery workers that consume the queue."""
        if not consumers:  # nobody answered: no verdict on any one worker
            if now - self._consumers_seen_at >= self.no_consumer_s:
                reason = (
                    f"no Celery worker answered for queue {self.queue!r} in {self.no_consumer_s:g}s"
                )
                for celery_id in list(self._watches):
                    self._lose(celery_id, reason)
            return
        self._consumers_seen_at = now
        for celery_id, watch in list(self._watches.items()):
            if watch.seen_on is None or watch.seen_on in consumers:
                watch.misses = 0
                continue
            watch.misses += 1
            if watch.misses >= self.misses:
                self._lose(
                    celery_id, f"Celery worker {watch.seen_on} stopped answering while running it"
                )

    def _lose(self, celery_id: str, reason: str) -> None:
        watch = self._watches.pop(celery_id, None)
        if watch is not None and not watch.lost.done():
            watch.lost.set_result(reason)
