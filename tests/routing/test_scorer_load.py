from __future__ import annotations

import numpy as np

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing.scorers.load import LoadScorer


def test_load_is_one_minus_utilisation() -> None:
    snap = pool(worker("a", slots=4, running=1), worker("b", slots=2, running=2), worker("c"))
    s = LoadScorer().score(ctx(task()), snap, np.array([0, 1, 2]))
    assert s is not None and s.tolist() == [0.75, 0.0, 1.0]
    # scores follow the rows asked for, in that order
    s = LoadScorer().score(ctx(task()), snap, np.array([2, 0]))
    assert s is not None and s.tolist() == [1.0, 0.75]
