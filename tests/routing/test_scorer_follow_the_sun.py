from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import NOW, ctx, pool, task, worker
from worldpool import geo
from worldpool.routing.scorers.follow_the_sun import FollowTheSunScorer, night_score


def test_night_score_shape() -> None:
    hours = np.array([2.0, 22.0, 6.0, 23.5, 10.0, 14.0, 18.0])
    assert night_score(hours).tolist() == pytest.approx([1, 1, 1, 1, 0.5, 0, 0.5])
    # smooth and monotone from 06:00 to 14:00
    day = night_score(np.linspace(6, 14, 50))
    assert np.all(np.diff(day) <= 1e-12)


def test_heavy_tasks_prefer_regions_where_it_is_night() -> None:
    # NOW is 22:13 UTC: night in London, mid-morning in Tokyo (07:13 +9), afternoon in LA
    snap = pool(
        worker("london", region="europe-west2"),
        worker("tokyo", region="ap-northeast-1"),
        worker("la", region="us-west-2"),
    )
    s = FollowTheSunScorer().score(ctx(task(heavy=True)), snap, np.arange(3))
    assert s is not None
    assert geo.is_night(snap.workers[0].profile.location, NOW)
    assert s[0] == 1.0 and s[0] > s[1] > s[2]


def test_not_applicable_to_light_tasks() -> None:
    assert FollowTheSunScorer().score(ctx(task()), pool(worker("a")), np.arange(1)) is None
