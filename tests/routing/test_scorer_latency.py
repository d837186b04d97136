from __future__ import annotations

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from worldpool import geo
from worldpool.routing.scorers.latency import LatencyScorer


def test_batch_tasks_use_measured_latency_to_the_orchestrator() -> None:
    snap = pool(
        worker("near", latency_ms=50.0),
        worker("far", profile_latency_ms=250.0),
        worker("very-far", latency_ms=900.0),
    )
    s = LatencyScorer(scale_ms=500).score(ctx(task()), snap, np.arange(3))
    assert s is not None and s.tolist() == pytest.approx([0.9, 0.5, 0.0])


def test_interactive_tasks_use_estimated_rtt_to_the_user() -> None:
    snap = pool(
        worker("tokyo", region="ap-northeast-1", latency_ms=1.0),
        worker("london", region="europe-west2", latency_ms=1.0),
    )
    spec = task(interactive=True, user_location="london")
    s = LatencyScorer(scale_ms=500).score(ctx(spec), snap, np.arange(2))
    assert s is not None and s[1] > s[0]
    london = geo.location_for("london")
    expected = 1 - geo.rtt_ms(london, snap.workers[0].profile.location) / 500
    assert s[0] == pytest.approx(max(0.0, expected))
    # a resolved ctx.user_location is used as given
    s2 = LatencyScorer(500).score(ctx(spec, user_location=london), snap, np.arange(2))
    assert s2 is not None and s2.tolist() == pytest.approx(s.tolist())
