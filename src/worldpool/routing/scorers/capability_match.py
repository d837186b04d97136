"""capability_match: prefer specialists, and workers that serve the requested LLM model.

``base = |required| / |advertised|`` (1.0 when nothing is required), so a worker with
exactly the required capabilities beats a generalist that would be wasted on this task.
When the task names a model (``requirements.model``, or a string ``payload["model"]`` as
a soft wish) the score is ``0.8 * base + 0.2 * serves_model``.
"""

from __future__ import annotations

import numpy as np

from worldpool.routing.interface import RoutingContext, Rows, Scores
from worldpool.routing.pool import PoolSnapshot

MODEL_BONUS = 0.2


def requested_model(ctx: RoutingContext) -> str | None:
    wish = ctx.task.requirements.model or ctx.task.payload.get("model")
    return wish.lower() if isinstance(wish, str) and wish else None


class CapabilityMatchScorer:
    name = "capability_match"

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        required = len(ctx.task.capabilities)
        if required:
            advertised = np.maximum(pool.capability_count[rows], required)
            base: Scores = required / advertised.astype(np.float64)
        else:
            base = np.ones(len(rows), dtype=np.float64)
        model = requested_model(ctx)
        if model is None:
            return base
        serves = pool.models.has_all((model,))[rows].astype(np.float64)
        out: Scores = (1 - MODEL_BONUS) * base + MODEL_BONUS * serves
        return out
