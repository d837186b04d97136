"""A columnar (numpy) view of the worker pool, kept up to date incrementally.

The router filters and scores whole columns at once, so a 10,000-worker pool costs
microseconds per decision. Two kinds of change arrive at very different rates:

* **profiles** (register, re-register, remove) are rare: they only put the columns
  aside, and the next read brings them up to date in place, reading only the profiles
  that changed: workers that joined are appended, a changed profile rewrites its row, a
  removal deletes its row (:mod:`worldpool.routing.columns`; the arrays are copied once,
  the other workers' profiles not read again). Only when many names or distinct values
  no worker holds any more have piled up is everything built afresh;
* **states** (every heartbeat, every reserve/release) are frequent: they patch one row
  of the state columns in place, O(1).

Set-valued fields (capabilities, handlers, tools, served models, labels) become bitmask
columns (:mod:`worldpool.routing.bits`); strings that many workers share (region, time
zone, GPU model) become small integer indices into a list of distinct values, so a
plugin evaluates a predicate once per distinct value and broadcasts it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from worldpool import geo
from worldpool.errors import NotFoundError
from worldpool.models import Location, Worker, WorkerState, WorkerStatus
from worldpool.routing import columns
from worldpool.routing.bits import BitVocab
from worldpool.routing.columns import STATUS_CODES as STATUS_CODES
from worldpool.routing.columns import gpu_models_text as gpu_models_text
from worldpool.routing.columns import label_pairs as label_pairs
from worldpool.routing.columns import model_names as model_names
from worldpool.routing.columns import tool_names as tool_names
from worldpool.routing.interface import Mask
from worldpool.unchecked import assign, construct

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

STATUS_ONLINE = STATUS_CODES[WorkerStatus.ONLINE]
MEMO_MAX = 1024
# Names and distinct values no worker holds any more (left by removals and changed
# profiles) are kept until there are more than this, and more than the live ones.
UNUSED_MAX = 256
_WORKER_FIELDS = frozenset({"profile", "state"})
_MISSING = object()


class PoolSnapshot:
    """The pool as columns. Row ``i`` describes ``workers[i]``.

    The annotated attributes below are the columns (:data:`COLUMNS`): set together by a
    read and put aside together when profiles change, so that a plugin reading one
    after a change brings them up to date (``__getattr__``) instead of reading stale rows.
    """

    _workers: list[Worker]
    _row: dict[str, int]  # worker id -> row
    ids: list[str]
    id_rank: I64  # each row's position in id order (ties are broken by id)
    # State columns, patched in place by update_state().
    status: npt.NDArray[np.int8]  # STATUS_CODES
    running: I64
    free_slots: I64
    last_heartbeat: F64
    latency_ms: F64  # measured, else the profile's latency to the orchestrator
    idle_share: F64  # 1 - running / slots, >= 0
    # Profile columns.
    max_concurrency: I64
    cost_per_hour: F64
    lat: F64
    lon: F64
    profile_latency_ms: F64
    gpu_count: I64
    max_vram_gb: F64
    memory_gb: F64
    cpus: I64
    capabilities: BitVocab
    capability_count: I64
    handlers: BitVocab
    tools: BitVocab
    models: BitVocab
    labels: BitVocab
    # Shared strings: distinct values and each row's index into them.
    regions: list[str]
    region_index: I64
    region_locations: list[Location]  # one location per distinct region
    timezones: list[str]
    timezone_index: I64
    gpu_models: list[str]
    gpu_model_index: I64
    coord_lat: F64  # distinct coordinates ...
    coord_lon: F64
    coord_index: I64  # ... and each row's index into them
    _coords: list[str]  # the distinct coordinates as text (what joined rows are matched on)
    _sorted_ids: list[str]  # the ids in id order (where a joined id goes)

    def __init__(self, workers: Iterable[Worker] = ()) -> None:
        self._stale = True
        self._kept: dict[str, Any] | None = None  # the columns put aside (None: build)
        # Since the columns were put aside: ids joined (to append, in order), ids whose
        # profile changed (rows to rewrite), ids that left (rows to delete).
        self._joined: dict[str, None] = {}
        self._changed: set[str] = set()
        self._removed: set[str] = set()
        self._by_id: dict[str, Worker] = {}
        self._cache_index: dict[str, set[str]] = {}  # artifact digest -> worker ids holding it
        self._memo: OrderedDict[Any, Any] = OrderedDict()
        self.version = 0  # bumped on every change; plugins may key caches on it
        for worker in workers:
            self.upsert(worker)

    # ------------------------------------------------------------------ changes

    def upsert(self, worker: Worker) -> None:
        """Add or replace a worker. An unchanged profile only patches the state row."""
        old = self._by_id.get(worker.id)
        if old is not None and old.profile == worker.profile:
            self.update_state(worker.state)
            return
        self._by_id[worker.id] = worker
        self._reindex_cache(worker.id, old.state.cached if old else (), worker.state.cached)
        self._set_aside()
        if old is None:
            self._joined[worker.id] = None
        else:
            self._changed.add(worker.id)
        self.version += 1

    def update_state(self, state: WorkerState) -> None:
        """Apply a heartbeat / load change to one worker, in place."""
        old = self._by_id.get(state.worker_id)
        if old is None:
            raise NotFoundError("worker", state.worker_id)
        worker = construct(Worker, _WORKER_FIELDS, {"profile": old.profile, "state": state})
        self._by_id[state.worker_id] = worker
        self._reindex_cache(state.worker_id, old.state.cached, state.cached)
        self.version += 1
        cols = self._columns()
        row = None if cols is None else cols["_row"].get(state.worker_id)
        if cols is None or row is None:  # a rebuild (or the append of a joiner) reads it
            return
        cols["_workers"][row] = worker
        _patch_state(cols, row, worker)

    def touch(self, heartbeats: Iterable[tuple[str, float]]) -> None:
        """Record heartbeat times (``last_heartbeat`` only, nothing else of the state), in
        place: O(1) per heartbeat and no new objects, so following every heartbeat of a
        10,000-worker pool stays cheap. Unknown ids and older times are ignored."""
        by_id = self._by_id
        cols = self._columns()
        at_row = {} if cols is None else cols["_row"]
        rows: list[int] = []
        times: list[float] = []
        for worker_id, at in heartbeats:
            worker = by_id.get(worker_id)
            if worker is None or at <= worker.state.last_heartbeat:
                continue
            assign(worker.state, last_heartbeat=at)  # a float from the backend's clock
            row = at_row.get(worker_id)
            if row is not None:
                rows.append(row)
                times.append(at)
        if rows and cols is not None:
            cols["last_heartbeat"][np.array(rows, dtype=np.intp)] = times
        self.version += 1

    def remove(self, worker_id: str) -> None:
        old = self._by_id.pop(worker_id, None)
        if old is None:
            raise NotFoundError("worker", worker_id)
        self._reindex_cache(worker_id, old.state.cached, ())
        self._set_aside()
        self._changed.discard(worker_id)
        if self._joined.pop(worker_id, _MISSING) is _MISSING:  # it has a row: delete it
            self._removed.add(worker_id)
        self.version += 1

    def _set_aside(self) -> None:
        """Profiles change: the columns are put aside (no plugin reads them short of the
        change) and the next read edits them (:meth:`_rebuild`)."""
        if not self._stale:
            self._kept = {name: self.__dict__.pop(name) for name in COLUMNS}
            self._stale = True

    def _columns(self) -> dict[str, Any] | None:
        """Where the columns are now (None: a rebuild is due, which reads every state)."""
        return self.__dict__ if not self._stale else self._kept

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set: the columns after a profile change.
        if name.startswith("_") or not self.__dict__.get("_stale", False):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.refresh()
        return getattr(self, name)

    def _reindex_cache(self, worker_id: str, old: Iterable[str], new: Iterable[str]) -> None:
        for digest in old:
            holders = self._cache_index.get(digest)
            if holders is not None:
                holders.discard(worker_id)
                if not holders:
                    del self._cache_index[digest]
        for digest in new:
            self._cache_index.setdefault(digest, set()).add(worker_id)

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self._by_id

    @property
    def workers(self) -> list[Worker]:
        """Workers in row order (do not mutate)."""
        self.refresh()
        return self._workers

    def row_of(self, worker_id: str) -> int:
        self.refresh()
        row = self._row.get(worker_id)
        if row is None:
            raise NotFoundError("worker", worker_id)
        return row

    def rows_of(self, worker_ids: Iterable[str]) -> npt.NDArray[np.intp]:
        """Rows of the ids that are in the pool (unknown ids are skipped)."""
        self.refresh()
        found = [r for r in (self._row.get(w) for w in worker_ids) if r is not None]
        return np.array(found, dtype=np.intp)

    def holders_of(self, digest: str) -> frozenset[str]:
        """Workers whose heartbeat says they cache ``digest``."""
        return frozenset(self._cache_index.get(digest, ()))

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """A value cached until profiles next change (e.g. a region allow-list mask).

        Only for values derived from profiles: state updates do not clear it. The cache
        keeps the :data:`MEMO_MAX` most recently used keys.
        """
        if self._stale:
            self._rebuild()
        value = self._memo.get(key, _MISSING)
        if value is not _MISSING:
            self._memo.move_to_end(key)
            return value
        value = self._memo[key] = compute()
        if len(self._memo) > MEMO_MAX:
            self._memo.popitem(last=False)
        return value

    def memo_get(self, key: Any) -> Any | None:
        """What :meth:`memo` holds for ``key``, or None (nothing is computed)."""
        if self._stale:
            return None
        value = self._memo.get(key, _MISSING)
        if value is _MISSING:
            return None
        self._memo.move_to_end(key)
        return value

    def rows_in_regions(self, per_region: Mask) -> npt.NDArray[np.intp]:
        """Ascending rows whose region is flagged in ``per_region`` (one flag per entry
        of :attr:`regions`), from an index of rows by region kept until profiles change."""

        def compute() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
            order = np.argsort(self.region_index, kind="stable").astype(np.intp)
            bounds = np.searchsorted(
                self.region_index[order], np.arange(len(self.regions) + 1)
            ).astype(np.intp)
            return order, bounds

        order, bounds = self.memo(("rows-by-region",), compute)
        picked = np.flatnonzero(per_region)
        if len(picked) == len(self.regions):
            return np.arange(len(self), dtype=np.intp)
        parts = [order[bounds[r] : bounds[r + 1]] for r in picked.tolist()]
        if not parts:
            return np.empty(0, dtype=np.intp)
        found: npt.NDArray[np.intp] = np.sort(np.concatenate(parts))
        return found

    def distance_km_from(self, loc: Location) -> F64:
        """Great-circle km from ``loc`` to every row (computed once per distinct place)."""

        def compute() -> F64:
            km = geo.distance_km_many(loc.lat, loc.lon, self.coord_lat, self.coord_lon)
            out: F64 = km[self.coord_index]
            return out

        result: F64 = self.memo(("distance_km", loc.lat, loc.lon), compute)
        return result

    @property
    def online(self) -> Mask:
        self.refresh()
        return np.asarray(self.status == STATUS_ONLINE, dtype=np.bool_)

    # ------------------------------------------------------------------ columns

    def refresh(self) -> None:
        """Rebuild the columns if profiles changed. The router calls this before plugins."""
        if self._stale:
            self._rebuild()

    def _rebuild(self) -> None:
        built = self._kept
        if built is not None and (self._removed or self._changed):
            # Rows of ids removed and joined again are deleted here and appended below;
            # a joiner whose profile changed since is appended as it is now.
            changed = [self._by_id[i] for i in self._changed if i not in self._joined]
            built = columns.edit(built, sorted(self._removed), changed)
            dead, total = columns.unused(built)
            if dead > max(UNUSED_MAX, total // 2):  # names nobody holds piled up
                built = None
        if built is None:
            built = columns.build(list(self._by_id.values()))
        elif self._joined:
            built = columns.extend(built, [self._by_id[i] for i in self._joined])
        self.__dict__.update(built)
        self._kept = None
        self._joined, self._changed, self._removed = {}, set(), set()
        self._memo.clear()
        self._stale = False


def _patch_state(cols: dict[str, Any], row: int, worker: Worker) -> None:
    """Write ``worker``'s state into row ``row`` of the state columns in ``cols``."""
    state = worker.state
    cols["status"][row] = STATUS_CODES[state.status]
    cols["running"][row] = state.running
    slots = int(cols["max_concurrency"][row])
    cols["free_slots"][row] = max(0, slots - state.running)
    cols["idle_share"][row] = max(0.0, 1.0 - state.running / slots)
    cols["last_heartbeat"][row] = state.last_heartbeat
    cols["latency_ms"][row] = (
        state.latency_ms
        if state.latency_ms is not None
        else worker.profile.latency_to_orchestrator_ms
    )


#: The column attributes of a :class:`PoolSnapshot`, as annotated on the class.
COLUMNS: tuple[str, ...] = tuple(PoolSnapshot.__annotations__)
