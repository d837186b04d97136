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
    bounded = True  # in [0, 1] by construction

    def score(self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows) -> Scores | None:
        required = len(ctx.task.capabilities)
        model = requested_model(ctx)
        # Profiles only: one column per (count, model), kept until profiles change.
        column: Scores = pool.memo(
            ("capability_match", required, model), lambda: _column(pool, required, model)
        )
        out: Scores = column[rows]
        return out


def _column(pool: PoolSnapshot, required: int, model: str | None) -> Scores:
    if required:
        advertised = np.maximum(pool.capability_count, required)
        base: Scores = required / advertised.astype(np.float64)
    else:
        base = np.ones(len(pool), dtype=np.float64)
    if model is None:
        return base
    serves = pool.models.has_all((model,)).astype(np.float64)
    out: Scores = (1 - MODEL_BONUS) * base + MODEL_BONUS * serves
    return out
