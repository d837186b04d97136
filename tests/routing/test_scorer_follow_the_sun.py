from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool import geo
from worldpool.routing.scorers.follow_the_sun import FollowTheSunScorer, night_score
from worldpool.routing.scorers.grid import (
    carbon_base,
    carbon_factor,
    price_factor,
)


def test_night_score_shape() -> None:
    hours = np.array([2.0, 22.0, 6.0, 23.5, 10.0, 14.0, 18.0])
    assert night_score(hours).tolist() == pytest.approx([1, 1, 1, 1, 0.5, 0, 0.5])
    # smooth and monotone from 06:00 to 14:00
    day = night_score(np.linspace(6, 14, 50))
    assert np.all(np.diff(day) <= 1e-12)


def test_price_and_carbon_model_shape() -> None:
    # 30 % off at night, list price at 14:00; carbon 20 % above average at 19:00, below at 07:00
    assert price_factor(np.array([2.0, 14.0, 10.0])).tolist() == pytest.approx([0.7, 1.0, 0.85])
    assert carbon_factor(np.array([19.0, 7.0, 13.0])).tolist() == pytest.approx([1.2, 0.8, 1.0])
    assert carbon_base(geo.location_for("eu-north-1")) == 30.0
    assert carbon_base(geo.location_for("europe-west2")) == 250.0  # by macro-region


def test_heavy_tasks_go_where_power_is_cheap_and_clean_now() -> None:
    # NOW is 22:13 UTC: night in London (price x0.70, 250 g x carbon_factor(22.2)),
    # 07:13 in Tokyo (price x0.717, 460 g x 0.8), 14:13 in Oregon (price x0.999, 150 g)
    snap = pool(
        worker("london", region="europe-west2"),
        worker("tokyo", region="ap-northeast-1"),
        worker("la", region="us-west-2"),
    )
    s = FollowTheSunScorer().score(ctx(task(heavy=True)), snap, np.arange(3))
    assert s is not None
    h = np.array([22 + 13 / 60, 7 + 13 / 60, 14 + 13 / 60])
    price = price_factor(h)
    carbon = np.array([250.0, 460.0, 150.0]) * carbon_factor(h)

    def scaled(v: np.ndarray) -> np.ndarray:
        return (v - v.min()) / (v.max() - v.min())

    expected = 1 - (scaled(price) + scaled(carbon)) / 2
    assert s.tolist() == pytest.approx(expected.tolist())
    # London is cheapest (night) and mid-clean; Oregon cleanest but at list price
    assert s[0] > s[2] > s[1]
    detail = FollowTheSunScorer().detail(ctx(task(heavy=True)), snap, 0)
    assert detail == "price x0.70, 283 g CO2/kWh now"


def test_same_signal_everywhere_scores_one() -> None:
    snap = pool(worker("a", region="us-east-1"), worker("b", region="us-east-1"))
    s = FollowTheSunScorer().score(ctx(task(heavy=True)), snap, np.arange(2))
    assert s is not None and s.tolist() == [1.0, 1.0]


def test_not_applicable_to_light_tasks() -> None:
    assert FollowTheSunScorer().score(ctx(task()), pool(worker("a")), np.arange(1)) is None
