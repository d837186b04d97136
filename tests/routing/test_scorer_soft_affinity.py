from __future__ import annotations

import numpy as np

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing.scorers.soft_affinity import SoftAffinityScorer


def test_the_affinity_worker_scores_one() -> None:
    snap = pool(worker("a"), worker("b"), worker("c"))
    c = ctx(task(affinity={"key": "wf:ctx"}), affinity_worker="b")
    s = SoftAffinityScorer().score(c, snap, np.array([0, 1, 2]))
    assert s is not None and s.tolist() == [0.0, 1.0, 0.0]


def test_not_applicable_without_soft_affinity_or_known_worker() -> None:
    snap = pool(worker("a"))
    rows = np.arange(1)
    scorer = SoftAffinityScorer()
    assert scorer.score(ctx(task(affinity={"key": "k"})), snap, rows) is None
    assert scorer.score(ctx(task(), affinity_worker="a"), snap, rows) is None
    hard = ctx(task(affinity={"key": "k", "mode": "hard"}), affinity_worker="a")
    assert scorer.score(hard, snap, rows) is None
    assert (
        scorer.score(ctx(task(affinity={"key": "k"}), affinity_worker="gone"), snap, rows) is None
    )
