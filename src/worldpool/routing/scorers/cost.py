"""cost: prefer cheap workers — ``1 - cost_per_hour / cost_scale_usd``, clipped to [0, 1].

The seed's scale is $10/h: a free on-prem box scores 1.0, a $2.50/h GPU 0.75.
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot


class CostScorer:
    name = "cost"

    bounded = True  # clipped here, once per profile change

    def __init__(self, scale_usd: float = 10.0) -> None:
        self.scale_usd = scale_usd

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        column: Scores = pool.memo(("cost", self.scale_usd), lambda: self._column(pool))
        out: Scores = column[rows]
        return out

    def _column(self, pool: PoolSnapshot) -> Scores:
        out: Scores = np.fmin(np.fmax(1.0 - pool.cost_per_hour / self.scale_usd, 0.0), 1.0)
        return out
