"""affinity: hard affinity pins a task to the worker that holds its affinity key.

Applies only when ``task.affinity.mode`` is ``hard`` and ``ctx.affinity_worker`` is known
(the first task with a key may go anywhere). Code: ``not_affinity_worker``. Soft
affinity is a scorer (``soft_affinity``) plus the engine's bounded wait.
"""

from __future__ import annotations

import numpy as np

from worldpool.models import AffinityMode, Verdict, Worker
from worldpool.routing.filters.base import ColumnFilter
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import PoolSnapshot


def pinned_to(ctx: RoutingContext) -> str | None:
    """The worker a hard affinity pins this task to, if any."""
    affinity = ctx.task.affinity
    if affinity is None or affinity.mode is not AffinityMode.HARD:
        return None
    return ctx.affinity_worker


class AffinityFilter(ColumnFilter):
    name = "affinity"
    remedy = "bring the affinity worker back"

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        target = pinned_to(ctx)
        if target is None:
            return {}
        if rows is None:
            failing = np.ones(len(pool), dtype=np.bool_)
            failing[pool.rows_of((target,))] = False
        else:
            failing = ~np.isin(rows, pool.rows_of((target,)))
        return {"not_affinity_worker": failing}

    def candidates(self, ctx: RoutingContext, pool: PoolSnapshot) -> Rows | None:
        """The pinned worker's row alone (none if it is not in the pool)."""
        target = pinned_to(ctx)
        return None if target is None else pool.rows_of((target,))

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        target = pinned_to(ctx)
        if target is not None and worker.id != target:
            key = ctx.task.affinity.key if ctx.task.affinity else ""
            return excluded(
                self.name,
                "not_affinity_worker",
                f"is not {target}, the worker hard affinity {key!r} pins this task to",
            )
        return ok(self.name)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        target = pinned_to(ctx)
        return f"is {target} (hard affinity)" if target else None
