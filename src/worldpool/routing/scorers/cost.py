"""cost: prefer cheap workers.

Two normalisations (``RoutingPolicy.cost_normalize``):

* ``scale`` (default, the seed's): ``1 - cost_per_hour / cost_scale_usd`` clipped to
  [0, 1]. With the seed's $10/h scale a free on-prem box scores 1.0, a $2.50/h GPU 0.75,
  and every box of $10/h or more 0.0 — in a pool of dear GPU boxes cost stops counting;
* ``feasible``: over the workers that passed the filters for this task, the cheapest
  scores 1.0 and the dearest 0.0, linear in between (all 1.0 when they cost the same),
  so cost keeps telling a $12/h box from a $30/h one.
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot


class CostScorer:
    name = "cost"
    bounded = True  # both normalisations give finite scores in [0, 1]

    def __init__(self, scale_usd: float = 10.0, normalize: str = "scale") -> None:
        self.scale_usd = scale_usd
        self.normalize = normalize

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        if self.normalize == "feasible":
            return _over_range(pool.cost_per_hour[rows])
        column: Scores = pool.memo(("cost", self.scale_usd), lambda: self._column(pool))
        out: Scores = column[rows]
        return out

    def _column(self, pool: PoolSnapshot) -> Scores:
        out: Scores = np.fmin(np.fmax(1.0 - pool.cost_per_hour / self.scale_usd, 0.0), 1.0)
        return out


def _over_range(cost: Scores) -> Scores:
    if len(cost) == 0:
        return cost
    low, high = float(cost.min()), float(cost.max())
    if high - low <= 1e-12:
        return np.ones(len(cost), dtype=np.float64)
    out: Scores = (high - cost) / (high - low)
    return out
