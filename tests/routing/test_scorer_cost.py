from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing.scorers.cost import CostScorer


def test_cost_is_linear_up_to_the_scale_then_zero() -> None:
    snap = pool(worker("free", cost=0), worker("gpu", cost=2.5), worker("dear", cost=40))
    s = CostScorer(scale_usd=10).score(ctx(task()), snap, np.arange(3))
    assert s is not None and s.tolist() == pytest.approx([1.0, 0.75, 0.0])
