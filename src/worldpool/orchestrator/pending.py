"""The pending queue as the orchestrator sees it: :class:`PendingQueue`.

It wraps the backend's pending-queue calls and is the only writer of what the fast path
relies on: whether the queue is *known empty* (only then may a submit send its task at
once), whether a *backlog* may be waiting for a slot, and when the queue was last read.
Every place that queues a task goes through it, so none can forget to say so.
"""

from __future__ import annotations

import time

from worldpool.backends.base import Backend


class PendingQueue:
    """The backend's pending queue plus what this replica knows about it."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        # Whether the queue may hold tasks this replica could dispatch when a slot comes
        # back: results wake the dispatcher only then (else every result would cost a
        # queue read). Set by anything queued, and by passes that left tasks.
        self._backlog = True
        # Whether the queue is known to be empty: the last pass read it and left nothing,
        # and nothing was queued since (a submit, a retry, a failover, a workflow resume,
        # a wake-up from outside).
        self._known_empty = False
        self._read_at = 0.0  # monotonic time of the last read

    @property
    def backlog(self) -> bool:
        return self._backlog

    def known_empty_since(self, window_s: float) -> bool:
        """Whether the queue is known to be empty, from a read less than ``window_s`` ago
        (the bound on what another process may have queued unseen)."""
        return self._known_empty and time.monotonic() - self._read_at < window_s

    async def read(self, limit: int) -> list[str]:
        """The first ``limit`` queued task ids, by priority. Until something is queued
        again (or :meth:`pass_done` says tasks were left), the queue is known empty: a
        submit from here on is either in this read or after it."""
        self._read_at = time.monotonic()
        self._known_empty = True
        ids = await self._backend.list_pending(limit)
        self._backlog = len(ids) >= limit  # set again for each task the pass leaves queued
        return ids

    def still_queued(self) -> None:
        """A task the current pass read stays queued (until the pass sends it)."""
        self._backlog = True

    def pass_done(self, read: int, sent: int) -> None:
        """The dispatch pass that read ``read`` ids sent ``sent``: if it left tasks queued,
        submits queue behind them."""
        self._backlog = self._backlog and sent < read
        if self._backlog:
            self._known_empty = False

    async def add(self, task_id: str, priority: int) -> None:
        """Queue a task (a retry, a failover, a resumed workflow step). Idempotent."""
        await self._backend.add_pending(task_id, priority)
        self.queued()

    def queued(self) -> None:
        """A task was queued by another backend call (a create) or is about to be."""
        self._backlog = True
        self._known_empty = False

    def maybe_queued_elsewhere(self) -> None:
        """Another process may have queued tasks: the next submit must not pass them by."""
        self._known_empty = False

    async def remove(self, task_id: str) -> None:
        await self._backend.remove_pending(task_id)
