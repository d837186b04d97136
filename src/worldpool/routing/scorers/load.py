"""load: prefer idle workers — ``1 - running / max_concurrency`` (0 when over-full).

The pool keeps this column up to date on every state change (``PoolSnapshot.idle_share``).
"""

from __future__ import annotations

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot


class LoadScorer:
    name = "load"
    bounded = True  # the pool keeps the column clipped to [0, 1]

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        out: Scores = pool.idle_share[rows]
        return out
