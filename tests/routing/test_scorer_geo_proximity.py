from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool import geo
from worldpool.routing.scorers.geo_proximity import GeoProximityScorer


def test_interactive_tasks_prefer_workers_near_the_user() -> None:
    snap = pool(worker("tokyo", region="ap-northeast-1"), worker("paris", region="europe-west9"))
    spec = task(interactive=True, user_location="london")
    s = GeoProximityScorer().score(ctx(spec), snap, np.arange(2))
    assert s is not None and s[1] > s[0]
    km = geo.distance_km(geo.location_for("london"), snap.workers[0].profile.location)
    assert s[0] == pytest.approx(1 - km / 20015)


def test_not_applicable_to_batch_tasks_or_without_a_location() -> None:
    snap = pool(worker("a"))
    scorer = GeoProximityScorer()
    assert scorer.score(ctx(task(user_location="london")), snap, np.arange(1)) is None
    assert scorer.score(ctx(task(interactive=True)), snap, np.arange(1)) is None


def test_the_default_policy_counts_the_users_distance_once() -> None:
    from worldpool.routing import Router, RoutingPolicy

    snap = pool(worker("near", region="eu-west-1"), worker("far", region="ap-southeast-2"))
    spec = task(interactive=True, user_location="eu-west-1")
    once = Router().decide(ctx(spec), snap)
    assert "latency" in once.weights and "geo_proximity" not in once.weights
    twice = Router(RoutingPolicy(count_distance_once=False)).decide(ctx(spec), snap)
    assert twice.weights["geo_proximity"] == 0.2 and twice.weights["latency"] == 0.2
    assert once.winner == twice.winner == "near"  # still near, by latency alone
