"""One filter's pass over the whole pool (the full explanation's), and what is read
from the passes: who excluded whom (``excluded_by``) and which filters fail a row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldpool.routing.hooks import FilterHooks
from worldpool.routing.interface import Mask, Rows


@dataclass(slots=True)
class FilterPass:
    """One filter's result over the pool."""

    hooks: FilterHooks  # the filter and its extension points
    failures: dict[str, Mask]  # code -> failing rows
    mask: Mask  # passing rows


def blocking(passes: list[FilterPass], row: int) -> list[FilterHooks]:
    """The filters whose full pass failed ``row``."""
    return [p.hooks for p in passes if not p.mask[row]]


def attribute(passes: list[FilterPass], n: int) -> tuple[dict[str, int], list[Mask], Mask]:
    """``excluded_by`` counts, per filter the rows it was first to exclude, and the
    feasible rows (those no filter excluded)."""
    counts: dict[str, int] = {}
    alive = np.ones(n, dtype=np.bool_)
    nobody = np.zeros(n, dtype=np.bool_)
    first: list[Mask] = []
    for p in passes:
        if not p.failures:  # excludes nobody (its mask is all True)
            first.append(nobody)
            continue
        newly = np.greater(alive, p.mask)  # alive and failing, in one pass
        first.append(newly)
        left = int(np.count_nonzero(newly))
        if not left:
            continue
        alive &= p.mask
        codes = list(p.failures.items())
        for i, (code, failing) in enumerate(codes):
            if i == len(codes) - 1:
                hit = left  # every newly excluded row fails some code: the rest are here
            else:
                hit_rows = newly & failing
                hit = int(np.count_nonzero(hit_rows))
                if hit:
                    newly = newly & ~failing
            if hit:
                counts[f"{p.hooks.name}:{code}"] = hit
                left -= hit
            if not left:
                break
    return counts, first, alive


def nearest_misses(
    passes: list[FilterPass], feasible: Mask, id_rank: npt.NDArray[np.int64], room: int
) -> Rows:
    """Up to ``room`` infeasible rows, fewest failing filters first, then by worker id:
    the order of a full sort by (failing filters, id rank), found with a partial
    selection and counted over whole masks (no gather per filter), so listing 25 near
    misses in a pool of 100,000 does not sort 100,000 rows."""
    n = len(feasible)
    failing = np.zeros(n, dtype=np.int64)
    for p in passes:
        if p.failures:
            np.add(failing, ~p.mask, out=failing)
    key = failing * max(n, 1) + id_rank  # unique: id ranks are
    key[feasible] = np.iinfo(np.int64).max
    missed = n - int(np.count_nonzero(feasible))
    take = min(room, missed)
    if take <= 0:
        return np.empty(0, dtype=np.intp)
    pick = np.argpartition(key, take - 1)[:take] if take < n else np.arange(n)
    ordered: Rows = pick[np.argsort(key[pick], kind="stable")].astype(np.intp, copy=False)
    return ordered
