"""soft_affinity: prefer the worker that holds the task's affinity key (warm context).

1.0 for ``ctx.affinity_worker``, 0.0 for everyone else; not applicable without a soft
affinity or before any worker holds the key. The engine also waits up to
``task.affinity.wait_s`` for that worker to free a slot.
"""

from __future__ import annotations

import numpy as np

from worldpool.models import AffinityMode
from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot


def soft_target(ctx: RoutingContext) -> str | None:
    affinity = ctx.task.affinity
    if affinity is None or affinity.mode is not AffinityMode.SOFT:
        return None
    return ctx.affinity_worker


class SoftAffinityScorer:
    name = "soft_affinity"
    bounded = True  # 0 or 1

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        target = soft_target(ctx)
        if target is None or target not in pool:
            return None
        out: Scores = (rows == pool.row_of(target)).astype(np.float64)
        return out
