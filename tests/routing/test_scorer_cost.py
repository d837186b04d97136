from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing.scorers.cost import CostScorer


def test_cost_is_linear_up_to_the_scale_then_zero() -> None:
    snap = pool(worker("free", cost=0), worker("gpu", cost=2.5), worker("dear", cost=40))
    s = CostScorer(scale_usd=10).score(ctx(task()), snap, np.arange(3))
    assert s is not None and s.tolist() == pytest.approx([1.0, 0.75, 0.0])


def test_feasible_normalisation_ranks_expensive_boxes_cheapest_first() -> None:
    snap = pool(worker("a", cost=12), worker("b", cost=21), worker("c", cost=30))
    scale = CostScorer(scale_usd=10).score(ctx(task()), snap, np.arange(3))
    assert scale is not None and scale.tolist() == [0.0, 0.0, 0.0]  # the seed's scale clips
    s = CostScorer(normalize="feasible").score(ctx(task()), snap, np.arange(3))
    assert s is not None and s.tolist() == pytest.approx([1.0, 0.5, 0.0])
    only_dear = CostScorer(normalize="feasible").score(ctx(task()), snap, np.array([1, 2]))
    assert only_dear is not None and only_dear.tolist() == pytest.approx([1.0, 0.0])
    same = pool(worker("x", cost=15), worker("y", cost=15))
    flat = CostScorer(normalize="feasible").score(ctx(task()), same, np.arange(2))
    assert flat is not None and flat.tolist() == [1.0, 1.0]


def test_the_policy_option_reaches_the_router() -> None:
    from worldpool.errors import ConfigError
    from worldpool.routing import Router, RoutingPolicy

    snap = pool(worker("a-dear", cost=30), worker("b-cheap", cost=12))
    plain = Router(RoutingPolicy(weights={"cost": 1.0}, scorers=("cost",)))
    assert plain.decide(ctx(task()), snap).winner == "a-dear"  # both clip to 0: id decides
    relative = Router(
        RoutingPolicy(weights={"cost": 1.0}, scorers=("cost",), cost_normalize="feasible")
    )
    d = relative.decide(ctx(task()), snap)
    assert d.winner == "b-cheap" and d.candidates[0].scores["cost"] == 1.0
    assert d.candidates[1].scores["cost"] == 0.0
    with pytest.raises(ConfigError, match="cost_normalize"):
        RoutingPolicy(cost_normalize="median")
