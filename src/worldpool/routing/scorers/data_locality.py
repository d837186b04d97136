"""data_locality: prefer a worker that already holds the task's input artifacts.

Score = share of input bytes the worker holds (share of inputs when every size is 0). A
worker holds an input if it produced it (``ref.producer``), its heartbeat lists the digest
in ``state.cached``, or ``ctx.artifact_holders[digest]`` names it. Applies only to tasks
with inputs.
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot


class DataLocalityScorer:
    name = "data_locality"

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        refs = list(ctx.task.inputs.values())
        if not refs:
            return None
        by_count = sum(r.size for r in refs) == 0
        held = np.zeros(len(pool), dtype=np.float64)
        total = 0.0
        for ref in refs:
            weight = 1.0 if by_count else float(ref.size)
            total += weight
            holders = set(pool.holders_of(ref.digest))
            holders.update(ctx.artifact_holders.get(ref.digest, ()))
            if ref.producer:
                holders.add(ref.producer)
            held[pool.rows_of(holders)] += weight
        out: Scores = held[rows] / total
        return out
