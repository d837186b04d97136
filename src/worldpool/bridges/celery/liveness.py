"""Is anyone still running it? :class:`FleetMonitor` watches the Celery workers that
consume a bridge's queue, so that a Celery worker that dies shows as a failed attempt,
not a hang.

While tasks are in flight it asks the fleet, every ``interval_s``, which workers consume
the queue (``inspect().active_queues()``) and what they run (``active()``). A task seen
running on a worker that then stops answering for ``misses`` checks in a row is lost; so
is every task in flight when no worker has consumed the queue for ``no_consumer_s``. The
two broadcasts run in a thread, once per interval for the whole bridge, never per task.
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
                consumers, active = await asyncio.to_thread(self._ask)
            except Exception as exc:  # the broker is down: the deadline still bounds the wait
                log.warning("cannot inspect the Celery fleet of %s: %s", self.queue, exc)
                continue
            self.observe(consumers, active, time.monotonic())

    def _ask(self) -> tuple[set[str], dict[str, set[str]]]:
        inspect = self.app.control.inspect(timeout=self.inspect_timeout_s)
        queues = inspect.active_queues() or {}
        consumers = {
            name for name, qs in queues.items() if any(q.get("name") == self.queue for q in qs)
        }
        if not consumers:
            return consumers, {}
        running = self.app.control.inspect(
            timeout=self.inspect_timeout_s, destination=sorted(consumers)
        ).active()
        return consumers, {
            name: {str(t.get("id")) for t in tasks} for name, tasks in (running or {}).items()
        }

    def observe(self, consumers: set[str], active: dict[str, set[str]], now: float) -> None:
        """One check's answers: which workers consume the queue, and what each runs."""
        if consumers:
            self._consumers_seen_at = now
        elif now - self._consumers_seen_at >= self.no_consumer_s:
            reason = (
                f"no Celery worker has consumed queue {self.queue!r} for {self.no_consumer_s:g}s"
            )
            for celery_id in list(self._watches):
                self._lose(celery_id, reason)
            return
        running_on = {tid: worker for worker, ids in active.items() for tid in ids}
        for celery_id, watch in list(self._watches.items()):
            worker = running_on.get(celery_id)
            if worker is not None:
                watch.seen_on, watch.misses = worker, 0
            elif watch.seen_on is not None and watch.seen_on not in active:
                watch.misses += 1  # its worker did not answer
                if watch.misses >= self.misses:
                    self._lose(
                        celery_id,
                        f"Celery worker {watch.seen_on} stopped answering while running it",
                    )

    def _lose(self, celery_id: str, reason: str) -> None:
        watch = self._watches.pop(celery_id, None)
        if watch is not None and not watch.lost.done():
            watch.lost.set_result(reason)
