"""throughput: prefer the box that runs this LLM request fastest.

Score ``speed / fastest`` over the feasible rows, where ``speed`` is the tokens/s the
next request would get there (advertised ``tokens_per_s`` on the batching curve of
:mod:`worldpool.routing.scorers.work`). Applies only to tasks naming a served model.
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot
from worldpool.routing.scorers.work import gpu_name, request_speed


class ThroughputScorer:
    name = "throughput"
    bounded = True  # a ratio to the fastest row, in [0, 1]

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        speed = request_speed(ctx, pool, rows)
        if speed is None:
            return None
        top = float(speed.max())
        out: Scores = speed / top if top > 0 else np.zeros(len(rows), dtype=np.float64)
        return out

    def detail(self, ctx: RoutingContext, pool: PoolSnapshot, row: int) -> str | None:
        speed = request_speed(ctx, pool, np.array([row], dtype=np.intp))
        if speed is None:
            return None
        return f"{gpu_name(pool, row)} at {float(speed[0]):.0f} tokens/s"
