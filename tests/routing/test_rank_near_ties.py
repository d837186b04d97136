"""Ranking with near ties picks the best k without sorting the whole band: the same rows,
in the same order, as sorting every feasible row by (banded total, per-task hash)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing import Router, RoutingPolicy
from worldpool.routing.engine import Scored, _task_shuffled
from worldpool.routing.interface import Rows, Scores


def _full_sort(
    router: Router, id_rank: npt.NDArray[np.int64], totals: Scores, k: int, task_id: str
) -> Rows:
    """The ranking as a sort of every row: banded totals, then the per-task hash."""
    near = router.policy.near_tie
    best = totals.max()
    band = totals >= best - near
    key = np.where(band, best, totals) if band.sum() > 1 else totals
    tie = _task_shuffled(id_rank, task_id) if band.sum() > 1 else id_rank
    order: Rows = np.lexsort((tie, -key))[:k]
    return order


@pytest.mark.parametrize("k", [1, 2, 3, 25])
@pytest.mark.parametrize("spread", [0.001, 0.05, 0.5])
def test_near_tie_top_k_is_the_full_sort(k: int, spread: float) -> None:
    # Given 60 workers with totals packed within `spread` (many, some or few near ties)
    snapshot = pool(*(worker(f"w{i:03d}") for i in range(60)))
    router = Router(RoutingPolicy())
    rng = np.random.default_rng(int(spread * 1000) + k)
    rows = np.sort(rng.choice(60, size=40, replace=False)).astype(np.intp)
    for trial in range(20):
        totals = 0.9 - rng.random(len(rows)) * spread
        if trial % 4 == 0:
            totals[rng.integers(len(rows), size=5)] = totals.max()  # exact ties too
        scored = Scored(rows, {}, {}, totals)
        c = ctx(task(id=f"task-{trial}"))
        # When the router ranks them
        got = router.rank(c, snapshot, scored, k)
        # Then it is the order of a sort of every row
        want = _full_sort(router, snapshot.id_rank[rows], totals, k, c.task.id)
        assert got.tolist() == want.tolist()
