"""The record cache: the last version of the task records this orchestrator wrote.

:class:`RecordCache` is the only place a record is cached, including the fast path's
trick of caching a record *before* its write lands, with the version the write will give
it (:meth:`RecordCache.put_predicted`).
"""

from __future__ import annotations

import asyncio

from worldpool.models import TaskRecord
from worldpool.orchestrator.signals import settle, wait_settled

RECORD_CACHE_MAX = 50_000
FINISHED_CACHE_MAX = 2_000
SUBMIT_ONLY_CACHE_MAX = 1_000  # a client: see Orchestrator(submit_only=True)


class RecordCache:
    """The last version of the task records this orchestrator wrote, so the hot paths
    (dispatch, results) need not read back and decode what they just wrote.

    Safe because every write is compare-and-set on the version: a cached record that
    another writer (a replica, a cancel, the sweep) has since replaced fails its next write,
    which evicts it, and the caller re-reads. Cached records are shared: never mutate one
    (the lifecycle functions copy).

    Finished records are kept apart and only the last FINISHED_CACHE_MAX of them (for
    waiters, and so a late write of an older version is recognised): tens of thousands
    of finished records kept alive for nothing made every full garbage collection walk
    them, and throughput fell as tasks piled up."""

    def __init__(self, limit: int = RECORD_CACHE_MAX) -> None:
        self._limit = limit
        self._live: dict[str, TaskRecord] = {}
        self._finished: dict[str, TaskRecord] = {}
        self._watchers: dict[str, list[asyncio.Future[None]]] = {}

    def get(self, task_id: str) -> TaskRecord | None:
        record = self._live.get(task_id)
        return record if record is not None else self._finished.get(task_id)

    def put(self, record: TaskRecord) -> None:
        """Remember ``record`` unless a newer version is cached already (a report applied
        while the dispatch that wrote the older one was still awaiting its reply)."""
        cached = self.get(record.id)
        if cached is not None and cached.version > record.version:
            return
        self.drop(record.id)
        if not record.status.terminal:
            _put_bounded(self._live, record, self._limit)
            return
        _put_bounded(self._finished, record, FINISHED_CACHE_MAX)
        for future in self._watchers.pop(record.id, ()):
            settle(future)

    def put_predicted(self, record: TaskRecord, version: int) -> None:
        """Cache ``record`` as it will be once a write in flight lands (which makes its
        stored version ``version``): the worker's report can then be applied before the
        coroutine that sent the write resumes. Sets ``record.version``, so ``record``
        must be one not yet shared. If the write fails, the caller must :meth:`drop` it."""
        record.version = version
        self.put(record)

    def drop(self, task_id: str) -> None:
        self._live.pop(task_id, None)
        self._finished.pop(task_id, None)

    async def wait_terminal(self, task_id: str, timeout_s: float) -> None:
        """Return when a finished record of the task is put, or after ``timeout_s``."""
        futures = self._watchers.setdefault(task_id, [])
        try:
            await wait_settled(futures, timeout_s)
        finally:
            if not futures and self._watchers.get(task_id) is futures:
                del self._watchers[task_id]


def _put_bounded(table: dict[str, TaskRecord], record: TaskRecord, limit: int) -> None:
    table[record.id] = record
    if len(table) > limit:
        del table[next(iter(table))]  # the oldest write
