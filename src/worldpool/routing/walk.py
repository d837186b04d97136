"""The lean decision's filter walk: the feasible rows without a pass over the pool.

The walk starts from the smallest candidate set a filter's index offers (the workers
running the handler, those in the allowed regions, the pinned worker; the whole pool
when none does) and asks each filter about the rows still in (``check_rows``),
capacity last, so the cost follows the candidates, not the pool; the rows reaching
capacity are those that fit once a slot is free (a backlog, not a misfit).

The rows passing the filters whose result depends on profiles only for this task (a
``static_key``: capabilities, hardware, region) are that same walk over those filters,
kept on the snapshot per combination of their keys until profiles change; a decision
then walks only the filters that follow worker state (health, capacity, affinity).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from worldpool.routing.hooks import FilterHooks
from worldpool.routing.interface import RoutingContext, Rows
from worldpool.routing.pool import PoolSnapshot

CAPACITY = "capacity"


class LeanWalk:
    """The walk over one router's filters (in policy order)."""

    def __init__(self, filter_hooks: list[FilterHooks]) -> None:
        self.filter_hooks = filter_hooks
        self._walk = sorted(enumerate(filter_hooks), key=lambda p: p[1].name == CAPACITY)
        # What a cached static result is keyed on, besides the task fields.
        self._plugin_names = [(type(h.plugin).__qualname__, h.name) for h in filter_hooks]

    def rows(self, ctx: RoutingContext, pool: PoolSnapshot) -> tuple[Rows, int]:
        """The feasible rows, ascending, and how many pass every filter but capacity."""
        rows, static = self._static_rows(ctx, pool)
        done = static  # filters the rows passed already (static ones, from the cache)
        for i, hooks in enumerate(self.filter_hooks):
            if hooks.candidates is None or i in done:
                continue  # a static filter's candidates hold the static rows
            offered = hooks.candidates(ctx, pool)
            if offered is not None and (rows is None or len(offered) < len(rows)):
                rows, done = offered, ()
        if rows is None:
            rows = np.arange(len(pool), dtype=np.intp)
        busy = -1
        for i, hooks in self._walk:
            if i in done:
                continue
            if hooks.name == CAPACITY and busy < 0:
                busy = len(rows)
            if not len(rows):
                break
            rows = rows[hooks.check_rows(ctx, pool, rows)]
        return rows, (len(rows) if busy < 0 else busy)

    def _static_rows(
        self, ctx: RoutingContext, pool: PoolSnapshot
    ) -> tuple[Rows | None, tuple[int, ...]]:
        """The rows passing every filter whose result depends on profiles only for this
        task (a static key), kept on the snapshot per task shape until profiles change,
        and those filters' positions; (None, ()) when there is none."""
        static: list[int] = []
        keys: list[Hashable] = []
        for i, hooks in enumerate(self.filter_hooks):
            key = hooks.static_key(ctx) if hooks.static_key is not None else None
            if key is not None:
                static.append(i)
                keys.append((self._plugin_names[i], key))
        if not static:
            return None, ()
        found: Rows = pool.memo(
            ("router.static-rows", tuple(keys)), lambda: self._walk_static(ctx, pool, static)
        )
        return found, tuple(static)

    def _walk_static(self, ctx: RoutingContext, pool: PoolSnapshot, static: list[int]) -> Rows:
        """The rows passing the filters at ``static``: the same walk, over those only."""
        chosen = [self.filter_hooks[i] for i in static]
        rows: Rows | None = None
        for hooks in chosen:
            offered = hooks.candidates(ctx, pool) if hooks.candidates is not None else None
            if offered is not None and (rows is None or len(offered) < len(rows)):
                rows = offered
        if rows is None:
            rows = np.arange(len(pool), dtype=np.intp)
        for hooks in chosen:
            if not len(rows):
                break
            rows = rows[hooks.check_rows(ctx, pool, rows)]
        rows = np.array(rows, dtype=np.intp)  # its own copy, shared read-only
        rows.flags.writeable = False
        return rows
