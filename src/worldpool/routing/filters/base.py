"""Shared shape of the built-in filters: failing rows per reason code.

A built-in filter computes, per code, the rows that fail for that reason
(:meth:`ColumnFilter.failures`); :meth:`mask` is derived from it, and the engine uses the
per-code masks to count exclusions (``excluded_by``) without looking at single workers.
:meth:`verdict` explains one worker with the numbers. Third-party filters need only
``mask`` and ``verdict`` (see :class:`worldpool.routing.interface.Filter`).

The engine calls :meth:`ColumnFilter.check` (failures and mask together). A filter whose
result depends only on worker *profiles* and a few task fields (capabilities, hardware,
region) returns those fields from :meth:`static_key`; its result is then computed once
per distinct key and kept on the snapshot until profiles change: an index from task
shape to candidate rows, so a decision pays for these filters with a dict look-up.

Each built-in writes its test once, in :meth:`ColumnFilter.failures_at`, over the whole
pool (``rows`` None) or over some rows only: the lean decision asks
:meth:`ColumnFilter.check_rows` about the rows still in the running (started from an
index, :meth:`ColumnFilter.candidates`), so it pays for those and not for the pool, and
the full explanation (``check``, every worker) applies the very same test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from worldpool.models import Verdict, Worker
from worldpool.routing.interface import Mask, RoutingContext, Rows, passing
from worldpool.routing.pool import PoolSnapshot

_Item = TypeVar("_Item", bound=np.generic)


def at(column: npt.NDArray[_Item], rows: Rows | None) -> npt.NDArray[_Item]:
    """``column`` for the pool (``rows`` None) or at ``rows`` only."""
    return column if rows is None else column[rows]


class ColumnFilter(ABC):
    """Base for the built-in filters."""

    name: str = ""
    #: What the unschedulable suggestion asks for when this filter alone blocks.
    remedy: str = ""
    #: True if exclusions come and go with load (capacity): left out of the headline of
    #: an unschedulable task unless they are what finally blocks it.
    transient: bool = False

    def failures(self, ctx: RoutingContext, pool: PoolSnapshot) -> dict[str, Mask]:
        """Code -> rows failing for that reason. Codes are checked in insertion order."""
        return self.failures_at(ctx, pool, None)

    @abstractmethod
    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        """Code -> failing flags: one per pool row when ``rows`` is None, else one per
        entry of ``rows``, computed from those rows alone."""

    def candidates(self, ctx: RoutingContext, pool: PoolSnapshot) -> Rows | None:
        """Ascending rows including every row this filter passes, from an index; None
        (the default) when no index narrows the pool."""
        return None

    def check_rows(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Mask:
        """Passing flags of ``rows``: the cached mask where this task shape's is cached
        already, else :meth:`failures_at` on those rows alone (never a pass over the pool
        for a shape not seen before)."""
        key = self.static_key(ctx)
        if key is not None:
            cached = pool.memo_get(("filter", type(self).__qualname__, self.name, key))
            if cached is not None:
                flags: Mask = cached[1][rows]
                return flags
        failing = self.failures_at(ctx, pool, rows)
        if not failing:
            return np.ones(len(rows), dtype=np.bool_)
        return passing(failing.values(), len(rows))

    @abstractmethod
    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        """One worker's verdict, with a reason that names the numbers."""

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        """A phrase for "no online worker <phrase>" naming what the task asks, or None."""
        return None

    def static_key(self, ctx: RoutingContext) -> Hashable | None:
        """The task fields the result depends on, if it depends on no worker *state*.

        None (the default) means the result changes with load or heartbeats and is
        computed for every decision.
        """
        return None

    def check(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        """Failing rows per code and the passing mask; cached per :meth:`static_key`.

        The cached arrays are shared by later decisions and are made read-only. Codes
        that fail no row may be left out (they count for nothing either way).
        """
        key = self.static_key(ctx)
        if key is None:
            return self._check(ctx, pool)
        cached: tuple[dict[str, Mask], Mask] = pool.memo(
            ("filter", type(self).__qualname__, self.name, key),
            lambda: _frozen(self._check(ctx, pool)),
        )
        return cached

    def _check(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[dict[str, Mask], Mask]:
        failures = self.failures(ctx, pool)
        return failures, passing(failures.values(), len(pool))

    def cached_verdict(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> Verdict:
        """:meth:`verdict` for ``pool`` row ``row``, kept per :meth:`static_key` and row.

        Near-miss reports ask the same static filters about the same workers decision
        after decision; their reasons are built (and validated) once.
        """
        key = self.static_key(ctx)
        if key is None:
            return self.verdict(ctx, pool.workers[row])
        per_row: dict[int, Verdict] = pool.memo(
            ("verdicts", type(self).__qualname__, self.name, key), dict
        )
        verdict = per_row.get(row)
        if verdict is None:
            verdict = per_row[row] = self.verdict(ctx, pool.workers[row])
        return verdict

    def mask(self, ctx: RoutingContext, pool: PoolSnapshot) -> Mask:
        return passing(self.failures(ctx, pool).values(), len(pool))


def _frozen(result: tuple[dict[str, Mask], Mask]) -> tuple[dict[str, Mask], Mask]:
    failures, passes = result
    for array in (*failures.values(), passes):
        array.flags.writeable = False
    return failures, passes


def join(names: Iterable[object]) -> str:
    """Sorted, comma-separated names for messages ("-" when empty)."""
    items = sorted(str(n) for n in names)
    return ", ".join(items) if items else "-"


def num(value: float) -> str:
    """A number as people write it: 80 not 80.0, 0.5 stays 0.5."""
    return f"{value:g}"
