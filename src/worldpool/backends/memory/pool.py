"""The memory backend's pool views: workers as routing reads them, and the change feed.

The store records which workers changed (:meth:`~.store.MemoryStore.pool_change`) and
when each was last heard from, oldest first; :func:`pool_changes_since` reads both back from a
cursor, walking back from the newest only as far as needed.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

from worldpool.backends.base import PoolChanges, PoolCursor
from worldpool.backends.memory.store import MemoryStore, clone
from worldpool.models import Worker, WorkerState

T = TypeVar("T", int, float)


def worker(store: MemoryStore, worker_id: str) -> Worker:
    """A copy of the worker, its running count the slots it holds now."""
    state = clone(store.states[worker_id]).model_copy(
        update={"running": len(store.slots.get(worker_id, ()))}
    )
    return Worker(profile=clone(store.profiles[worker_id]), state=state)


def routing_part(state: WorkerState) -> tuple[object, ...]:
    """What routing reads of a heartbeat's state (not its counter nor its time): a
    heartbeat that changes it is a pool change."""
    return (state.status, state.consuming, state.latency_ms, state.cached, state.sticky_keys)


def pool_changes_since(store: MemoryStore, cursor: PoolCursor) -> PoolChanges:
    """What changed since ``cursor``: workers that changed or left, and heartbeats."""
    ids = list(_newest_after(store.pool_changed, cursor.changed, inclusive=False))
    beats = list(_newest_after(store.heard, cursor.heard, inclusive=True).items())
    return PoolChanges(
        cursor=PoolCursor(float(store.pool_seq), beats[-1][1] if beats else cursor.heard),
        workers=[worker(store, i) for i in ids if i in store.profiles],
        gone=[i for i in ids if i not in store.profiles],
        heartbeats=beats,
    )


def pool_cursor(store: MemoryStore) -> PoolCursor:
    """The cursor of the pool as it is now (for a whole read)."""
    return PoolCursor(float(store.pool_seq), next(reversed(store.heard.values()), 0.0))


def _newest_after(
    entries: OrderedDict[str, T], after: float, *, inclusive: bool
) -> OrderedDict[str, T]:
    """The entries of an oldest-first mapping whose value is above (or at) ``after``,
    oldest first, walking back from the newest only as far as needed."""
    found: list[tuple[str, T]] = []
    for key in reversed(entries):
        value = entries[key]
        if value < after or (value == after and not inclusive):
            break
        found.append((key, value))
    return OrderedDict(reversed(found))
