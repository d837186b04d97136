"""cost_per_work: prefer the worker that does a unit of this task's work cheapest.

Price ÷ throughput (:func:`worldpool.routing.scorers.work.usd_per_unit`): $ per 1k
output tokens for a task naming a served model, $ per slot-hour otherwise. Scores
``cheapest / price``: the cheapest feasible worker 1.0, one twice as dear 0.5. Unlike
``cost`` ($/h against a fixed scale) it keeps telling $12/h boxes from $28/h ones, and
an H100 that is dearer per hour but faster per token is not penalised.
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.work import best_over, gpu_name, usd_per_unit


class CostPerWorkScorer:
    name = "cost_per_work"
    bounded = True  # best_over is in [0, 1]

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        if len(rows) == 0:
            return None
        price, _ = usd_per_unit(ctx, pool, rows)
        return best_over(price)

    def detail(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> str | None:
        price, unit = usd_per_unit(ctx, pool, np.array([row], dtype=np.intp))
        value = float(price[0])
        if not np.isfinite(value):
            return f"{gpu_name(pool, row)}: no advertised speed, price per {unit} unknown"
        hourly = float(pool.cost_per_hour[row])
        return f"{gpu_name(pool, row)}, ${value:.4f} per {unit} (${hourly:.2f}/h)"
