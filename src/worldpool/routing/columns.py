"""The pool snapshot's columns, built from workers: for the whole pool, or edited in
place for the workers that joined, changed profile or left.

:func:`build` makes every column of :class:`~worldpool.routing.pool.PoolSnapshot` from a
list of workers (row ``i`` describes ``workers[i]``); :func:`extend` appends the rows of
workers that joined to columns built earlier and gives exactly what :func:`build` gives
for the longer list (same rows, same bits, same distinct-value order), at the cost of
copying the arrays once instead of reading every worker's profile again. :func:`edit`
rewrites the rows of workers whose profile changed and deletes those of workers that
left (the others keep their order), reading only the changed profiles: every row then
holds what :func:`build` gives for the edited list, though a name or a distinct value no
row holds any more keeps its place (it matches no row) until :func:`unused` says enough
of them pile up to build afresh.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt

from worldpool.models import Location, Worker, WorkerProfile, WorkerStatus
from worldpool.routing.bits import BitVocab

I64 = npt.NDArray[np.int64]
STATUS_CODES: dict[WorkerStatus, int] = {
    WorkerStatus.ONLINE: 0,
    WorkerStatus.DRAINING: 1,
    WorkerStatus.OFFLINE: 2,
}
# Per-row numeric columns, built from each worker alone.
_NUMERIC = (
    "status",
    "running",
    "free_slots",
    "last_heartbeat",
    "latency_ms",
    "idle_share",
    "max_concurrency",
    "cost_per_hour",
    "lat",
    "lon",
    "profile_latency_ms",
    "gpu_count",
    "max_vram_gb",
    "memory_gb",
    "cpus",
    "capability_count",
)
_SETS = ("capabilities", "handlers", "tools", "models", "labels")
# More removals than this at once are deleted in one pass over the row lists.
FEW_GONE = 16
# Shared strings: (distinct values, each row's index into them).
_INTERNED = (("timezones", "timezone_index"), ("gpu_models", "gpu_model_index"))


def tool_names(profile: WorkerProfile) -> set[str]:
    """Tools a worker offers: its listed tools plus its browser and virtualization."""
    hw = profile.hardware
    names = {t.lower() for t in hw.tools}
    platform = hw.virtualization.platform if hw.virtualization else None
    names.update(x.lower() for x in (hw.browser, platform) if x)
    return names


def model_names(profile: WorkerProfile) -> set[str]:
    return {m.name.lower() for m in profile.hardware.models}


def label_pairs(labels: dict[str, str]) -> set[str]:
    return {f"{k}={v}" for k, v in labels.items()}


def gpu_models_text(profile: WorkerProfile) -> str:
    """Every GPU model of a worker in one lower-case string, for substring matching."""
    return " | ".join(g.model.lower() for g in profile.hardware.gpus)


def _numeric(workers: list[Worker]) -> dict[str, Any]:
    profiles = [w.profile for w in workers]
    states = [w.state for w in workers]
    hw = [p.hardware for p in profiles]
    slots = np.array([p.max_concurrency for p in profiles], np.int64)
    running = np.array([s.running for s in states], np.int64)
    return {
        "status": np.array([STATUS_CODES[s.status] for s in states], np.int8),
        "running": running,
        "free_slots": np.maximum(slots - running, 0),
        "last_heartbeat": np.array([s.last_heartbeat for s in states], np.float64),
        "latency_ms": np.array(
            [
                s.latency_ms if s.latency_ms is not None else p.latency_to_orchestrator_ms
                for s, p in zip(states, profiles, strict=True)
            ],
            np.float64,
        ),
        "idle_share": np.maximum(1.0 - running / np.maximum(slots, 1), 0.0),
        "max_concurrency": slots,
        "cost_per_hour": np.array([p.cost_per_hour for p in profiles], np.float64),
        "lat": np.array([p.location.lat for p in profiles], np.float64),
        "lon": np.array([p.location.lon for p in profiles], np.float64),
        "profile_latency_ms": np.array(
            [p.latency_to_orchestrator_ms for p in profiles], np.float64
        ),
        "gpu_count": np.array([h.gpu_count for h in hw], np.int64),
        "max_vram_gb": np.array([h.max_vram_gb for h in hw], np.float64),
        "memory_gb": np.array([h.memory_gb for h in hw], np.float64),
        "cpus": np.array([h.cpus for h in hw], np.int64),
        "capability_count": np.array([len(p.capabilities) for p in profiles], np.int64),
    }


def _set_rows(profiles: list[WorkerProfile]) -> dict[str, list[set[str] | frozenset[str]]]:
    return {
        "capabilities": [p.capabilities for p in profiles],
        "handlers": [p.handlers for p in profiles],
        "tools": [tool_names(p) for p in profiles],
        "models": [model_names(p) for p in profiles],
        "labels": [label_pairs(p.labels) for p in profiles],
    }


def _strings(profiles: list[WorkerProfile]) -> dict[str, list[str]]:
    return {
        "timezones": [p.location.timezone for p in profiles],
        "gpu_models": [gpu_models_text(p) for p in profiles],
        "coords": [f"{p.location.lat!r},{p.location.lon!r}" for p in profiles],
        "regions": [p.location.region for p in profiles],
    }


def _intern(distinct: list[str], values: list[str]) -> tuple[list[str], I64]:
    """``distinct`` extended by the values not in it yet (first-seen order), and the
    index of each of ``values`` into the result."""
    index = {v: i for i, v in enumerate(distinct)}
    rows = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int64, len(values))
    return list(index), rows


def _id_rank(ids: list[str]) -> tuple[I64, list[str]]:
    order = sorted(range(len(ids)), key=ids.__getitem__)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids), dtype=np.int64)
    return rank, [ids[i] for i in order]


def build(workers: list[Worker]) -> dict[str, Any]:
    """Every column for ``workers`` (row ``i`` is ``workers[i]``), and ``_sorted_ids``."""
    return extend(_empty(), workers)


def _empty() -> dict[str, Any]:
    cols: dict[str, Any] = {name: np.empty(0) for name in _NUMERIC}
    cols.update({name: BitVocab([]) for name in _SETS})
    cols.update(_workers=[], _row={}, ids=[], id_rank=np.empty(0, np.int64), _sorted_ids=[])
    for values, index in (*_INTERNED, ("regions", "region_index")):
        cols[values], cols[index] = [], np.empty(0, np.int64)
    cols.update(_coords=[], coord_index=np.empty(0, np.int64), region_locations=[])
    cols.update(coord_lat=np.empty(0, np.float64), coord_lon=np.empty(0, np.float64))
    return cols


def extend(cols: dict[str, Any], joined: list[Worker]) -> dict[str, Any]:
    """New columns: those of ``cols`` with a row appended for each of ``joined`` (ids not
    in ``cols`` yet), equal to :func:`build` of the longer worker list. ``cols`` is used
    up: its lists and dicts grow in place."""
    profiles = [w.profile for w in joined]
    start = len(cols["ids"])
    out: dict[str, Any] = {}
    new = _numeric(joined)
    for name in _NUMERIC:
        out[name] = np.concatenate([cols[name].astype(new[name].dtype, copy=False), new[name]])
    for name, rows in _set_rows(profiles).items():
        out[name] = cols[name].extended(rows)
    new_ids = [w.id for w in joined]
    out["id_rank"], out["_sorted_ids"] = _ranks_extended(cols, new_ids)
    out["_workers"] = cols["_workers"]
    out["_workers"].extend(joined)
    out["_row"] = cols["_row"]
    out["_row"].update((w, start + i) for i, w in enumerate(new_ids))
    out["ids"] = cols["ids"]
    out["ids"].extend(new_ids)
    strings = _strings(profiles)
    for values, index in (*_INTERNED, ("regions", "region_index")):
        out[values], more = _intern(cols[values], strings[values])
        out[index] = np.concatenate([cols[index], more])
    out["_coords"], more = _intern(cols["_coords"], strings["coords"])
    out["coord_index"] = np.concatenate([cols["coord_index"], more])
    _coordinates(cols, out)
    # One location per distinct region: the last row's with it, as a full build gives.
    locations: list[Location] = list(cols["region_locations"])
    locations += [Location(region="?")] * (len(out["regions"]) - len(locations))
    for p, idx in zip(profiles, out["region_index"][start:].tolist(), strict=True):
        locations[idx] = p.location
    out["region_locations"] = locations
    return out


def _coordinates(cols: dict[str, Any], out: dict[str, Any]) -> None:
    """``coord_lat`` / ``coord_lon`` for ``out``'s distinct coordinates: those of
    ``cols`` and the ones added since (only those are parsed)."""
    added = out["_coords"][len(cols["coord_lat"]) :]
    lat = np.array([float(c.split(",")[0]) for c in added], np.float64)
    lon = np.array([float(c.split(",")[1]) for c in added], np.float64)
    out["coord_lat"] = np.concatenate([cols["coord_lat"], lat])
    out["coord_lon"] = np.concatenate([cols["coord_lon"], lon])


def edit(cols: dict[str, Any], removed: list[str], changed: list[Worker]) -> dict[str, Any]:
    """New columns: those of ``cols`` with the rows of ``changed`` (ids in ``cols``)
    rewritten from their profiles and states, then the rows of ``removed`` (ids in
    ``cols``, none of ``changed``) deleted, the other rows keeping their order. Every
    row equals what :func:`build` gives for the edited list; only the changed workers'
    profiles are read. ``cols`` is used up: its lists and dicts change in place."""
    row_of: dict[str, int] = cols["_row"]
    gone = np.array(sorted(row_of[i] for i in removed), np.intp)
    at = np.array([row_of[w.id] for w in changed], np.intp)
    profiles = [w.profile for w in changed]
    out: dict[str, Any] = {}
    new = _numeric(changed)
    for name in _NUMERIC:
        out[name] = _edited(cols[name].astype(new[name].dtype, copy=False), at, new[name], gone)
    for name, rows in _set_rows(profiles).items():
        out[name] = cols[name].edited(gone, list(zip(at.tolist(), rows, strict=True)))
    strings = _strings(profiles)
    touched = set(cols["region_index"][np.concatenate([at, gone])].tolist())
    for values, index in (*_INTERNED, ("regions", "region_index"), ("_coords", "coord_index")):
        out[values], more = _intern(cols[values], strings[values.lstrip("_")])
        out[index] = _edited(cols[index], at, more, gone)
    _coordinates(cols, out)
    _edit_rows(cols, out, gone, at, changed)
    # One location per distinct region: the last row's with it, as a full build gives
    # (a region no row has any more keeps its last one: it matches no row).
    locations: list[Location] = list(cols["region_locations"])
    locations += [Location(region="?")] * (len(out["regions"]) - len(locations))
    region_index: I64 = out["region_index"]
    for idx in touched | set(region_index[at - np.searchsorted(gone, at)].tolist()):
        holders = np.flatnonzero(region_index == idx)
        if len(holders):
            locations[idx] = out["_workers"][int(holders[-1])].profile.location
    out["region_locations"] = locations
    return out


def _edited(column: npt.NDArray[Any], at: Any, values: Any, gone: Any) -> npt.NDArray[Any]:
    """``column`` with ``values`` written at rows ``at``, then rows ``gone`` deleted (a
    copy: the old column may still be read by whoever holds it)."""
    out = column.copy()
    out[at] = values
    return np.delete(out, gone) if len(gone) else out


def _edit_rows(
    cols: dict[str, Any], out: dict[str, Any], gone: Any, at: Any, changed: list[Worker]
) -> None:
    """The row bookkeeping (workers, ids, rows by id, id ranks) of :func:`edit`."""
    workers: list[Worker] = cols["_workers"]
    for row, worker in zip(at.tolist(), changed, strict=True):
        workers[row] = worker
    ids: list[str] = cols["ids"]
    row_of: dict[str, int] = cols["_row"]
    rank: I64 = cols["id_rank"]
    ranks = np.sort(rank[gone])
    sorted_ids: list[str] = cols["_sorted_ids"]
    if len(gone) > FEW_GONE:  # each del below moves the rows after it: one pass instead
        sorted_ids[:] = _kept(sorted_ids, ranks)
        for row in gone.tolist():
            del row_of[ids[row]]
        ids[:], workers[:] = _kept(ids, gone), _kept(workers, gone)
    else:
        for r in reversed(ranks.tolist()):
            del sorted_ids[r]
        for row in reversed(gone.tolist()):
            del row_of[ids[row]]
            del ids[row]
            del workers[row]
    if len(gone):  # the rows after the first deleted one moved up
        first = int(gone[0])
        row_of.update(zip(ids[first:], range(first, len(ids)), strict=True))
        rank = np.delete(rank, gone)
        rank = rank - np.searchsorted(ranks, rank)  # ranks are distinct: "left" is exact
    out.update(_workers=workers, _row=row_of, ids=ids, id_rank=rank, _sorted_ids=sorted_ids)


def _kept(items: list[Any], gone: Any) -> list[Any]:
    """``items`` but those at the (ascending) positions ``gone``."""
    keep = np.ones(len(items), dtype=np.bool_)
    keep[gone] = False
    return list(compress(items, keep.tolist()))


def unused(cols: dict[str, Any]) -> tuple[int, int]:
    """How many names and distinct values the columns hold that no row has any more
    (left by :func:`edit`), and how many in all."""
    total = dead = 0
    for name in _SETS:
        vocab: BitVocab = cols[name]
        held = np.bitwise_or.reduce(vocab.matrix, axis=0) if len(vocab.matrix) else []
        have = sum(int(word).bit_count() for word in held)
        total += len(vocab.bits)
        dead += len(vocab.bits) - have
    for values, index in (*_INTERNED, ("regions", "region_index"), ("_coords", "coord_index")):
        count = np.bincount(cols[index], minlength=len(cols[values]))
        total += len(cols[values])
        dead += int(np.count_nonzero(count == 0))
    return dead, total


def _ranks_extended(cols: dict[str, Any], new_ids: list[str]) -> tuple[I64, list[str]]:
    """Each row's position in id order, and the ids in that order, after ``new_ids``
    joined: the old rows move up by the joined ids that sort before them (no sort of
    the whole pool when few join)."""
    old_sorted: list[str] = cols["_sorted_ids"]
    if len(new_ids) * 8 > len(old_sorted):  # many at once: sorting again is as cheap
        return _id_rank([*cols["ids"], *new_ids])
    below = [bisect_left(old_sorted, i) for i in new_ids]  # old ids sorting before each
    old_rank: I64 = cols["id_rank"]
    bumped = old_rank + np.searchsorted(np.array(sorted(below), np.int64), old_rank, "right")
    joined_rank = np.empty(len(new_ids), dtype=np.int64)
    by_id = sorted(range(len(new_ids)), key=new_ids.__getitem__)
    for k, j in enumerate(by_id):  # k joined ids sort before this one, besides the old
        joined_rank[j] = below[j] + k
    merged = list(old_sorted)
    for i in new_ids:
        insort(merged, i)
    return np.concatenate([bumped, joined_rank]), merged
