"""load: prefer idle workers — ``1 - running / max_concurrency``."""

from __future__ import annotations

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot


class LoadScorer:
    name = "load"

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        out: Scores = 1.0 - pool.running[rows] / pool.max_concurrency[rows]
        return out
